"""A counting projection over a test table: what the projection tests fold and check."""

from __future__ import annotations

from eventstore import RecordedEvent
from projections.runner import Projection
from sqldb import Connection, Database

COUNTS = """CREATE TABLE IF NOT EXISTS test_counts (
    stream TEXT PRIMARY KEY, n BIGINT NOT NULL, last_position BIGINT NOT NULL)"""


async def count(conn: Connection, events: list[RecordedEvent]) -> None:
    for e in events:
        await conn.execute(
            "INSERT INTO test_counts (stream, n, last_position) VALUES ($1, 1, $2)"
            " ON CONFLICT (stream) DO UPDATE SET n = test_counts.n + 1, last_position = $2",
            e.stream,
            e.position,
        )


COUNTER = Projection("counter", frozenset({"counted"}), count)


async def totals(db: Database) -> dict[str, int]:
    rows = await db.fetch("SELECT stream, n FROM test_counts ORDER BY stream")
    return {r["stream"]: r["n"] for r in rows}
