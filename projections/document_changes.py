"""What each document update changed, kept by the document read model: `doc_updates` holds one row
per `doc.updated` event folded (who, when, from which connection and node) and `doc_changes` one
row per change it made, in the studio's words (domain.changes: kind, path, sentence, the values
before and after as JSON). The fold computes them as it applies each update
(projections/document.py); history pages read them instead of replaying the log
(projections/history.py), and analysts query them ("who set the Vocals volume, and when").

A project's rows reach up to the version of its last update in `doc_updates`: history serves
what lies beyond from the log. During a rebuild the live tables stay as they were; a deployment
that adds these tables rebuilds the document read model (its shape's version) before they hold
a project's past."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.changes import Change
from domain.events import origin
from eventstore import RecordedEvent
from projections.tables import Names, Table, insert_rows
from sqldb import Connection, Database, Row

TABLES = (
    Table(
        "doc_updates",
        {
            "project_id": "text not null",
            "version": "bigint not null",  # stream version of the doc.updated event
            "position": "bigint not null",
            "recorded_at": "bigint not null",  # epoch microseconds, as the log has it
            "user_id": "text",
            "connection_id": "text",
            "node": "text",
            "changes": "bigint not null",  # how many rows of doc_changes it has
        },
        key=("project_id", "version"),
        indexes=(("project_id", "user_id", "version"),),
    ),
    Table(
        "doc_changes",
        {
            "project_id": "text not null",
            "version": "bigint not null",
            "seq": "bigint not null",  # the change's place among the update's, in document order
            "kind": "text not null",  # track.added, track.volume_db, lyrics.typed, ...
            "path": "text not null",  # tracks/<id>/volume_db, lyrics, meta/bpm, ...
            "summary": "text not null",
            "count": "bigint not null",  # characters of a lyrics change, else 0
            "before": "text",  # JSON; null where there was nothing
            "after": "text",
        },
        key=("project_id", "version", "seq"),
    ),
)

_UPDATE_COLUMNS = (
    "project_id",
    "version",
    "position",
    "recorded_at",
    "user_id",
    "connection_id",
    "node",
    "changes",
)
_CHANGE_COLUMNS = (
    "project_id",
    "version",
    "seq",
    "kind",
    "path",
    "summary",
    "count",
    "before",
    "after",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


@dataclass(slots=True)
class ChangeRows:
    """The rows a fold's batch writes: its updates' and their changes'."""

    updates: list[tuple[Any, ...]]
    changes: list[tuple[Any, ...]]

    def add(self, project_id: str, event: RecordedEvent, found: Sequence[Change]) -> None:
        self.updates.append(
            (
                project_id,
                event.version,
                event.position,
                _micros(event.recorded_at),
                *origin(event.metadata),
                len(found),
            )
        )
        self.changes.extend(
            (
                project_id,
                event.version,
                seq,
                c.kind,
                c.path,
                c.summary,
                c.count,
                _json(c.before),
                _json(c.after),
            )
            for seq, c in enumerate(found)
        )

    async def write(self, conn: Connection, names: Names) -> None:
        """Upserted: a batch the runner retries writes the same rows again."""
        await insert_rows(
            conn,
            names["doc_updates"],
            _UPDATE_COLUMNS,
            self.updates,
            upsert=("project_id", "version"),
        )
        await insert_rows(
            conn,
            names["doc_changes"],
            _CHANGE_COLUMNS,
            self.changes,
            upsert=("project_id", "version", "seq"),
        )


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """A folded document update: its event's who, when and where, and what it changed."""

    version: int
    position: int
    recorded_at: datetime
    user_id: str | None
    connection_id: str | None
    node: str | None
    changes: tuple[Change, ...]


def _change(row: Row) -> Change:
    before, after = row["before"], row["after"]
    return Change(
        row["kind"],
        row["path"],
        row["summary"],
        int(row["count"]),
        None if before is None else json.loads(before),
        None if after is None else json.loads(after),
    )


def _micros(moment: datetime) -> int:
    """Epoch microseconds: what the log stamps, kept exactly (a float would round)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _prefixes(path: str) -> list[str]:
    """`tracks/t1/volume_db` and the paths containing it: `tracks/t1`, `tracks`."""
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _like(path: str) -> str:
    """A LIKE pattern of the paths inside `path` (`\\` escapes LIKE's wildcards)."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


class ChangesReadModel:
    """Queries on doc_updates and doc_changes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def folded(self, project_id: str) -> int:
        """The version of the project's last update folded into these tables (0: none)."""
        value = await self._db.fetchval(
            "SELECT max(version) FROM doc_updates WHERE project_id = $1", project_id
        )
        return 0 if value is None else int(value)

    async def changes(self, project_id: str, first: int, last: int) -> dict[int, list[Change]]:
        """The changes of the updates with `first <= version <= last`, by version."""
        where = "version >= $2 AND version <= $3"
        return await self._changes(where, project_id, first, last)

    async def _changes(self, where: str, project_id: str, *args: Any) -> dict[int, list[Change]]:
        rows = await self._db.fetch(
            'SELECT version, kind, path, summary, "count", "before", "after" FROM doc_changes'
            f" WHERE project_id = $1 AND {where} ORDER BY version, seq",
            project_id,
            *args,
        )
        found: dict[int, list[Change]] = {}
        for row in rows:
            found.setdefault(int(row["version"]), []).append(_change(row))
        return found

    async def updates(
        self,
        project_id: str,
        *,
        after: int,
        upto: int,
        limit: int,
        path: str | None = None,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[StoredUpdate]:
        """Up to `limit` updates with `after < version <= upto`, in version order, of `user`,
        within [since, until], that changed something at, inside or containing `path`."""
        where = ["u.project_id = $1", "u.version > $2", "u.version <= $3"]
        args: list[Any] = [project_id, after, upto]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if user is not None:
            where.append(f"u.user_id = {arg(user)}")
        if since is not None:
            where.append(f"u.recorded_at >= {arg(_micros(since))}")
        if until is not None:
            where.append(f"u.recorded_at <= {arg(_micros(until))}")
        if path is not None:
            exact = ", ".join(arg(p) for p in _prefixes(path))
            where.append(
                "EXISTS (SELECT 1 FROM doc_changes c WHERE c.project_id = u.project_id"
                f" AND c.version = u.version AND (c.path IN ({exact})"
                f" OR c.path LIKE {arg(_like(path))} ESCAPE '\\'))"
            )
        rows = await self._db.fetch(
            "SELECT u.version, u.position, u.recorded_at, u.user_id, u.connection_id, u.node"
            f" FROM doc_updates u WHERE {' AND '.join(where)}"
            f" ORDER BY u.version LIMIT {arg(limit)}",
            *args,
        )
        if not rows:
            return []
        versions = [int(r["version"]) for r in rows]
        marks = ", ".join(f"${i + 2}" for i in range(len(versions)))
        found = await self._changes(f"version IN ({marks})", project_id, *versions)
        return [
            StoredUpdate(
                int(r["version"]),
                int(r["position"]),
                _moment(int(r["recorded_at"])),
                r["user_id"],
                r["connection_id"],
                r["node"],
                tuple(found.get(int(r["version"]), ())),
            )
            for r in rows
        ]
