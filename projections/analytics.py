"""The analytics read model, in one module: its tables, the fold that keeps them from the
`doc.updated` and `session.*` events (`analytics_projection`, applied by the runner), and the
queries on them (`AnalyticsReadModel`). docs/analytics.md describes every table and column for
analysts, and how an open session whose node died is closed.

The fold is set-based: a batch is aggregated in Python, then each count table gets one multi-row
upsert that adds the batch's counts to the stored ones. Exactly once is the runner's (the batch
and its checkpoint share a transaction), so nothing here deduplicates. Every table is a function
of the events folded, never of how they were batched or of the wall clock: a rebuild from position
0 equals the model built incrementally."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from domain.events import DOC_UPDATED, SESSION_JOINED, SESSION_LEFT, is_project_stream, project_of
from domain.events.catalog import TRACK_PLAYED, USER_LISTENER, read_track_played, track_of
from eventstore import RecordedEvent
from projections.runner import Apply, Projection
from projections.tables import (
    Names,
    Table,
    fetch_where_in,
    in_list,
    in_list_chunks,
    insert_rows,
)
from sqldb import Connection, Database, Row

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# An open session is closed as `abandoned` once the log (its latest event from any node) is this
# far past the last event of the session's node, or past the session's start plus the cap; it
# ends at the node's last event, capped (docs/analytics.md, "Sessions whose node died").
ABANDON_AFTER_MS = 30 * 60 * 1000
SESSION_CAP_MS = 12 * HOUR_MS

Granularity = Literal["hour", "day"]
GRANULARITIES: tuple[Granularity, ...] = ("hour", "day")
BUCKET_MS: dict[Granularity, int] = {"hour": HOUR_MS, "day": DAY_MS}

_COUNTS = {"edits": "bigint not null", "bytes": "bigint not null", "sessions": "bigint not null"}
_PLAYS = {
    "plays": "bigint not null",
    "signed_in": "bigint not null",
    "anonymous": "bigint not null",
}
_SESSION_COLUMNS = {
    "position": "bigint not null",  # the log position of its session.joined: the session's id
    "project_id": "text not null",
    "connection_id": "text not null",
    "user_id": "text not null",
    "node": "text not null",
    "role": "text",
    "dialect": "text",
    "joined_at": "bigint not null",
    "left_at": "bigint",  # its session.left, if logged
    "close_code": "bigint",  # the WebSocket close code its session.left gives
    "ended_at": "bigint",  # left_at, or where an abandoned session was closed; NULL: open
    "end_reason": "text",  # left | abandoned; NULL: open
    "seconds": "double",  # ended_at - joined_at, in seconds; NULL: open
}

TABLES = (
    Table(
        "analytics_hours",
        {"project_id": "text not null", "hour": "bigint not null", "user_id": "text not null"}
        | _COUNTS,
        key=("project_id", "hour", "user_id"),
        indexes=[("user_id", "hour")],
    ),
    Table(
        "analytics_days",
        {"project_id": "text not null", "day": "bigint not null", "user_id": "text not null"}
        | _COUNTS,
        key=("project_id", "day", "user_id"),
        indexes=[("user_id", "day")],
    ),
    Table(
        "analytics_sessions",
        _SESSION_COLUMNS,
        key=("position",),
        indexes=[
            ("project_id", "joined_at"),
            ("user_id", "joined_at"),
            ("connection_id",),
            ("ended_at",),
            ("node", "end_reason"),
        ],
    ),
    # Every track.played, counted or not (the counted plays are the catalog's catalog_track_days).
    Table(
        "analytics_play_days",
        {"track_id": "text not null", "day": "bigint not null"} | _PLAYS,
        key=("track_id", "day"),
        indexes=[("day",)],
    ),
    Table(
        "analytics_nodes",
        {
            "node": "text not null",
            "first_seen_at": "bigint not null",
            "last_seen_at": "bigint not null",
            "events": "bigint not null",
        },
        key=("node",),
        indexes=[("last_seen_at",)],
    ),
)


def millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


# -- a batch, aggregated --------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    """A row of analytics_sessions."""

    position: int
    project_id: str
    connection_id: str
    user_id: str
    node: str
    role: str | None
    dialect: str | None
    joined_at: int
    left_at: int | None = None
    close_code: int | None = None
    ended_at: int | None = None
    end_reason: str | None = None

    def settle(self, node_last_seen: int, now: int) -> None:
        """End the session at its leave; or, not left, close it as abandoned when the log has
        left its node behind (or its start beyond the cap), at the node's last event (capped);
        otherwise it is open. A function of the session, its node and the log's clock only."""
        if self.left_at is not None:
            self.ended_at, self.end_reason = self.left_at, "left"
        elif node_last_seen < now - ABANDON_AFTER_MS or self.joined_at < now - SESSION_CAP_MS:
            end = min(node_last_seen, self.joined_at + SESSION_CAP_MS)
            self.ended_at, self.end_reason = max(end, self.joined_at), "abandoned"
        else:
            self.ended_at = self.end_reason = None

    def row(self) -> tuple[Any, ...]:
        seconds = None if self.ended_at is None else (self.ended_at - self.joined_at) / 1000
        return (
            self.position,
            self.project_id,
            self.connection_id,
            self.user_id,
            self.node,
            self.role,
            self.dialect,
            self.joined_at,
            self.left_at,
            self.close_code,
            self.ended_at,
            self.end_reason,
            seconds,
        )

    @classmethod
    def of(cls, row: Row) -> Session:
        return cls(*(row[c] for c in tuple(_SESSION_COLUMNS)[:12]))


@dataclass(frozen=True, slots=True)
class Left:
    position: int
    project_id: str
    connection_id: str
    at: int
    code: int | None


@dataclass(slots=True)
class Batch:
    """What a batch adds: counts per (project, bucket, user), each node's first and last event,
    the sessions it opens and the leaves it logs, in log order."""

    hours: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    days: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    nodes: dict[str, list[int]] = field(default_factory=dict)  # first, last, events
    joined: list[Session] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    plays: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Sequence[RecordedEvent]) -> Batch:
        batch = cls()
        for event in events:
            if event.type == TRACK_PLAYED:
                batch.play(event)
            elif is_project_stream(event.stream):
                batch.add(event)
        return batch

    def play(self, event: RecordedEvent) -> None:
        at = millis(event)
        row = self.plays.setdefault((track_of(event.stream), at - at % DAY_MS), [0, 0, 0])
        signed_in = read_track_played(event.data).startswith(USER_LISTENER)
        row[0] += 1
        row[1 if signed_in else 2] += 1

    def add(self, event: RecordedEvent) -> None:
        at, project_id, meta = millis(event), project_of(event.stream), event.metadata
        user_id, node = _text(meta.get("user_id")), _text(meta.get("node"))
        seen = self.nodes.setdefault(node, [at, at, 0])
        seen[0], seen[1], seen[2] = min(seen[0], at), max(seen[1], at), seen[2] + 1
        if event.type == DOC_UPDATED:
            self._count(project_id, user_id, at, 1, len(event.data), 0)
            return
        data = _json(event.data)
        connection_id = _text(meta.get("connection_id", data.get("connection_id")))
        if event.type == SESSION_JOINED:
            self._count(project_id, user_id, at, 0, 0, 1)
            role, dialect = data.get("role"), data.get("dialect")
            self.joined.append(
                Session(
                    event.position,
                    project_id,
                    connection_id,
                    user_id,
                    node,
                    role if isinstance(role, str) else None,
                    dialect if isinstance(dialect, str) else None,
                    at,
                )
            )
        elif event.type == SESSION_LEFT:
            code = data.get("code")
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            self.left.append(Left(event.position, project_id, connection_id, at, code))

    def _count(
        self, project_id: str, user_id: str, at: int, edits: int, size: int, sessions: int
    ) -> None:
        for buckets, span in ((self.hours, HOUR_MS), (self.days, DAY_MS)):
            key = (project_id, at - at % span, user_id)
            row = buckets.get(key)
            if row is None:
                row = buckets[key] = [0, 0, 0]
            row[0] += edits
            row[1] += size
            row[2] += sessions


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the fold -------------------------------------------------------------------------------


_ADD = {c: f'{{t}}."{c}" + excluded."{c}"' for c in _COUNTS}
_NODE_SETS = {
    "first_seen_at": "CASE WHEN excluded.first_seen_at < {t}.first_seen_at"
    " THEN excluded.first_seen_at ELSE {t}.first_seen_at END",
    "last_seen_at": "CASE WHEN excluded.last_seen_at > {t}.last_seen_at"
    " THEN excluded.last_seen_at ELSE {t}.last_seen_at END",
    "events": "{t}.events + excluded.events",
}


def fold(names: Names) -> Apply:
    """The fold into the tables `names` gives (the live ones, or their rebuild twins)."""

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        batch = Batch.of(events)
        for table, bucket, counts in (
            ("analytics_hours", "hour", batch.hours),
            ("analytics_days", "day", batch.days),
        ):
            key = ("project_id", bucket, "user_id")
            rows = [(*k, *v) for k, v in counts.items()]
            await insert_rows(conn, names[table], (*key, *_COUNTS), rows, upsert=key, sets=_ADD)
        await insert_rows(
            conn,
            names["analytics_play_days"],
            ("track_id", "day", *_PLAYS),
            [(*k, *v) for k, v in batch.plays.items()],
            upsert=("track_id", "day"),
            sets={c: f'{{t}}."{c}" + excluded."{c}"' for c in _PLAYS},
        )
        await insert_rows(
            conn,
            names["analytics_nodes"],
            ("node", "first_seen_at", "last_seen_at", "events"),
            [(node, *seen) for node, seen in batch.nodes.items()],
            upsert=("node",),
            sets=_NODE_SETS,
        )
        await _sessions(conn, names, batch)

    return apply


async def _sessions(conn: Connection, names: Names, batch: Batch) -> None:
    """Open the batch's sessions, end those it leaves, and settle again every session whose
    state may have changed: those of nodes the batch heard from (an abandoned one reopens if its
    node turns out alive) and the open ones the log's clock has now left behind."""
    table, nodes = names["analytics_sessions"], names["analytics_nodes"]
    now, found = await _found_sessions(conn, table, nodes, batch)
    sessions = {int(r["position"]): Session.of(r) for r in found}
    sessions.update((s.position, s) for s in batch.joined)
    # By connection: a batch of many joins and leaves (a rebuild, a burst of joiners) is
    # matched in one pass, not each leave against every session.
    by_connection: dict[tuple[str, str], list[Session]] = {}
    for session in sessions.values():
        if session.left_at is None:
            by_connection.setdefault((session.project_id, session.connection_id), []).append(
                session
            )
    for left in batch.left:  # a leave ends the latest session of its connection opened before it
        open_ = [
            s
            for s in by_connection.get((left.project_id, left.connection_id), ())
            if s.left_at is None and s.position < left.position
        ]
        if open_:  # none: its join is not in the log; there is nothing to end
            session = max(open_, key=lambda s: s.position)
            session.left_at, session.close_code = left.at, left.code
    if not sessions:
        return
    last_seen = {
        r["node"]: int(r["last_seen_at"])
        for r in await fetch_where_in(
            conn,
            f"SELECT node, last_seen_at FROM {nodes} WHERE node IN ({{marks}})",
            sorted({s.node for s in sessions.values()}),
        )
    }
    for session in sessions.values():
        session.settle(last_seen.get(session.node, session.joined_at), now)
    await insert_rows(
        conn,
        table,
        tuple(_SESSION_COLUMNS),
        [s.row() for s in sessions.values()],
        upsert=("position",),
    )


async def _found_sessions(
    conn: Connection, table: str, nodes: str, batch: Batch
) -> tuple[int, list[Row]]:
    """The log's clock (the latest event of any node, the batch's included), and the stored
    sessions whose state the batch may change: the open ones that clock has left behind, the
    abandoned ones of nodes the batch heard from, the open ones of connections it leaves. One
    statement: in an SQLite transaction each read is a hop to the writer thread."""
    columns = ", ".join(f's."{c}"' for c in _SESSION_COLUMNS)
    parts = [
        f"SELECT {columns} FROM {table} s JOIN {nodes} n ON n.node = s.node, clock"
        " WHERE s.ended_at IS NULL"
        " AND (n.last_seen_at < clock.now - $1 OR s.joined_at < clock.now - $2)"
    ]
    args: list[Any] = [ABANDON_AFTER_MS, SESSION_CAP_MS]
    for where, values in (
        ("s.end_reason = 'abandoned' AND s.node", list(batch.nodes)),
        ("s.left_at IS NULL AND s.connection_id", sorted({x.connection_id for x in batch.left})),
    ):
        for chunk in in_list_chunks(values):  # a batch (BATCH_SIZE events) takes one
            marks, padded = in_list(chunk, len(args) + 1)
            parts.append(f"SELECT {columns} FROM {table} s WHERE {where} IN ({marks})")
            args += padded
    rows = await conn.fetch(
        f"WITH clock AS (SELECT COALESCE(MAX(last_seen_at), 0) AS now FROM {nodes})"
        " SELECT clock.now AS clock_now, f.* FROM clock"
        f" LEFT JOIN ({' UNION '.join(parts)}) f ON 1 = 1",
        *args,
    )
    return int(rows[0]["clock_now"]), [r for r in rows if r["position"] is not None]


def analytics_projection() -> Projection:
    return Projection(
        name="analytics",
        event_types=frozenset({DOC_UPDATED, SESSION_JOINED, SESSION_LEFT, TRACK_PLAYED}),
        fold=fold,
        tables=TABLES,
        version=2,  # 2: plays per track and day (analytics_play_days)
    )


# -- the queries ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Whole buckets of `granularity` (UTC) from `start` (included) to `end` (excluded), in
    epoch milliseconds."""

    start: int
    end: int
    granularity: Granularity

    @classmethod
    def covering(cls, start: int, end: int, granularity: Granularity) -> Window:
        """The whole buckets that cover [start, end)."""
        size = BUCKET_MS[granularity]
        return cls(start - start % size, -(-end // size) * size, granularity)

    @property
    def buckets(self) -> int:
        return (self.end - self.start) // BUCKET_MS[self.granularity]

    def public(self) -> dict[str, Any]:
        return {"granularity": self.granularity, "from": self.start, "to": self.end}


_SUMS = (
    "CAST(SUM(edits) AS BIGINT) AS edits, CAST(SUM(bytes) AS BIGINT) AS bytes,"
    " CAST(SUM(sessions) AS BIGINT) AS sessions"
)


def _counts(row: Row) -> dict[str, int]:
    return {c: int(row[c]) for c in _COUNTS}


class AnalyticsReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def project(self, project_id: str, window: Window) -> dict[str, Any]:
        """A project's activity in `window`: a bucket for each hour or day with any, each
        collaborator's share (most edits first), the totals, and its sessions' time."""
        body = await self._activity("project_id", project_id, "user_id", "collaborators", window)
        return {"project_id": project_id, **body}

    async def user(self, user_id: str, window: Window) -> dict[str, Any]:
        """A user's own activity in `window`, over all their projects: buckets, each project's
        share (with its title, if the project is known), the totals, and their sessions' time."""
        body = await self._activity("user_id", user_id, "project_id", "projects", window)
        titles = {
            r["id"]: r["title"]
            for r in await fetch_where_in(
                self._db,
                "SELECT id, title FROM projects WHERE id IN ({marks})",
                [p["project_id"] for p in body["projects"]],
            )
        }
        for share in body["projects"]:
            share["title"] = titles.get(share["project_id"])
        return {"user_id": user_id, **body}

    async def _activity(
        self, who: str, value: str, other: str, others: str, window: Window
    ) -> dict[str, Any]:
        """The buckets, shares and totals of the rows whose `who` is `value`; `others` names
        the count of distinct `other` values (collaborators of a project, projects of a user)."""
        bucket = window.granularity
        table = "analytics_hours" if bucket == "hour" else "analytics_days"
        where = f"WHERE {who} = $1 AND {bucket} >= $2 AND {bucket} < $3"
        args = (value, window.start, window.end)
        series = await self._db.fetch(
            f"SELECT {bucket} AS at, {_SUMS}, COUNT(*) AS n FROM {table} {where}"
            f" GROUP BY {bucket} ORDER BY {bucket}",
            *args,
        )
        shares = await self._db.fetch(
            f"SELECT {other}, {_SUMS} FROM {table} {where}"
            f" GROUP BY {other} ORDER BY SUM(edits) DESC, {other}",
            *args,
        )
        timed = await self._db.fetchrow(
            "SELECT COUNT(*) - COUNT(ended_at) AS open, SUM(seconds) AS seconds"
            f" FROM analytics_sessions WHERE {who} = $1 AND joined_at >= $2 AND joined_at < $3",
            *args,
        )
        assert timed is not None
        listed = [{other: r[other], **_counts(r)} for r in shares]
        totals: dict[str, Any] = {c: sum(s[c] for s in listed) for c in _COUNTS}
        return {
            **window.public(),
            "totals": totals
            | {
                others: len(listed),
                "session_seconds": float(timed["seconds"] or 0.0),
                "open_sessions": int(timed["open"]),
            },
            "series": [{"at": int(r["at"]), **_counts(r), others: int(r["n"])} for r in series],
            others: listed,
        }
