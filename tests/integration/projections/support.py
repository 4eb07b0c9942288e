"""A counting projection over a test table: what the projection tests fold and check; and a
count of an SQLite database's hops to its writer thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eventstore import RecordedEvent
from projections.failures import Apply
from projections.rebuild import create_missing
from projections.runner import Projection
from projections.tables import Names, Table
from sqldb import Connection, Database, SQLiteDatabase

COUNTS = Table(
    "test_counts",
    {"stream": "text not null", "n": "bigint not null", "last_position": "bigint not null"},
    key=("stream",),
)


async def count_into(table: str, conn: Connection, events: list[RecordedEvent]) -> None:
    for e in events:
        await conn.execute(
            f"INSERT INTO {table} (stream, n, last_position) VALUES ($1, 1, $2)"
            f" ON CONFLICT (stream) DO UPDATE SET n = {table}.n + 1, last_position = $2",
            e.stream,
            e.position,
        )


async def count(conn: Connection, events: list[RecordedEvent]) -> None:
    await count_into("test_counts", conn, events)


def counting(names: Names) -> Apply:
    table = names["test_counts"]

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        await count_into(table, conn, events)

    return apply


COUNTER = Projection("counter", frozenset({"counted"}), counting, tables=(COUNTS,))


async def create_counts(db: Database) -> None:
    async with db.transaction() as conn:
        await create_missing(conn, db.kind, [COUNTS])


async def totals(db: Database) -> dict[str, int]:
    rows = await db.fetch("SELECT stream, n FROM test_counts ORDER BY stream")
    return {r["stream"]: r["n"] for r in rows}


def count_hops(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int] | None:
    """How many jobs the SQLite writer thread has run since (None on Postgres)."""
    if not isinstance(db, SQLiteDatabase):
        return None
    writer = db._writer
    run = writer.run
    hops = 0

    async def counted(fn: Any) -> Any:
        nonlocal hops
        hops += 1
        return await run(fn)

    monkeypatch.setattr(writer, "run", counted)
    return lambda: hops
