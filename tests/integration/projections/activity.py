"""A studio's activity as logged events with chosen times, for the analytics fold's tests, and the
fold run on tables of its own (so that each Hypothesis example starts empty)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import events
from eventstore import NewEvent, RecordedEvent
from projections import analytics
from projections.rebuild import create_missing
from projections.tables import Names, qualified
from sqldb import Database

HOUR = 3_600_000
MINUTE = 60_000
# 2026-11-02 23:00:00 UTC: an hour before a day's end.
EVENING = int(datetime(2026, 11, 2, 23, tzinfo=UTC).timestamp() * 1000)


def moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def edit(user: str, node: str, connection: str | None = None, size: int = 10) -> NewEvent:
    metadata = {"user_id": user, "connection_id": connection, "node": node, "client_id": 1}
    return NewEvent(events.DOC_UPDATED, b"\x00" * size, metadata)


def joined(user: str, node: str, connection: str, role: str = "editor") -> NewEvent:
    return events.session_event(
        events.SESSION_JOINED,
        user_id=user,
        connection_id=connection,
        node=node,
        role=role,
        dialect="y-websocket",
    )


def left(user: str, node: str, connection: str, code: int = 1000) -> NewEvent:
    return events.session_event(
        events.SESSION_LEFT,
        user_id=user,
        connection_id=connection,
        node=node,
        seconds=0.0,
        code=code,
    )


@dataclass
class Log:
    """Events of project streams at chosen moments (epoch ms), in log order."""

    recorded: list[RecordedEvent] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def add(self, project: str, at: int, event: NewEvent) -> RecordedEvent:
        stream = events.stream_name(project)
        self.versions[stream] = version = self.versions.get(stream, 0) + 1
        recorded = RecordedEvent(
            position=len(self.recorded) + 1,
            stream=stream,
            version=version,
            type=event.type,
            data=event.data,
            metadata_json=json.dumps(event.metadata),
            recorded_at=moment(at),
        )
        self.recorded.append(recorded)
        return recorded


class Tables:
    """The analytics tables under names of their own, folded into batch by batch."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.suffix = "_t" + secrets.token_hex(4)
        self.names: Names = {t.name: t.name + self.suffix for t in analytics.TABLES}
        self._apply = analytics.fold(self.names)

    async def __aenter__(self) -> Tables:
        async with self.db.transaction() as conn:
            await create_missing(conn, self.db.kind, analytics.TABLES, suffix=self.suffix)
        return self

    async def __aexit__(self, *exc: object) -> None:
        async with self.db.transaction() as conn:
            for physical in self.names.values():
                await conn.execute(f"DROP TABLE IF EXISTS {qualified(self.db.kind, physical)}")

    async def clear(self) -> None:
        """Delete every row: the tables as made, at a fraction of the cost of making them."""
        async with self.db.transaction() as conn:
            for physical in self.names.values():
                await conn.execute(f"DELETE FROM {qualified(self.db.kind, physical)}")

    async def fold(self, batches: Iterable[list[RecordedEvent]]) -> None:
        for batch in batches:
            async with self.db.transaction() as conn:
                await self._apply(conn, batch)

    async def rows(self, table: str) -> list[tuple[Any, ...]]:
        return (await snapshot(self.db, self.names))[table]

    async def everything(self) -> dict[str, list[tuple[Any, ...]]]:
        return await snapshot(self.db, self.names)

    async def sessions(self) -> dict[str, dict[str, Any]]:
        """The sessions by connection id, as column -> value."""
        spec = next(t for t in analytics.TABLES if t.name == "analytics_sessions")
        found = [dict(zip(spec.columns, r, strict=True)) for r in await self.rows(spec.name)]
        return {s["connection_id"]: s for s in found}


async def snapshot(db: Database, names: Names) -> dict[str, list[tuple[Any, ...]]]:
    """Each analytics table's rows (read from its physical name in `names`), columns as
    declared, in key order."""
    found = {}
    for table in analytics.TABLES:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        order = ", ".join(f'"{c}"' for c in table.key)
        rows = await db.fetch(f"SELECT {columns} FROM {names[table.name]} ORDER BY {order}")
        found[table.name] = [tuple(r[c] for c in table.columns) for r in rows]
    return found
