"""The events a projection with the `skip` policy could not apply, kept in `projection_failures`.

A failure is written in the transaction that moves the projection's checkpoint past the event, so
an event is either applied, or recorded, exactly once. `retry` applies recorded failures again
(out of order: after the events that followed them), each in a transaction that deletes its row,
so a failure that now applies is applied once even if two retries race."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventstore import EventStore, RecordedEvent
from sqldb import Connection, Database

logger = logging.getLogger(__name__)

# What a projection applies (the runner's `Projection.apply`), inside the checkpoint's transaction.
Apply = Callable[[Connection, list[RecordedEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryResult:
    applied: int
    failing: int


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def record(conn: Connection, projection: str, event: RecordedEvent, exc: Exception) -> None:
    """Record that `projection` could not apply `event` (inside the checkpoint's transaction)."""
    await conn.execute(
        "INSERT INTO projection_failures (projection, position, stream, version, type, error,"
        " traceback, failed_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
        projection,
        event.position,
        event.stream,
        event.version,
        event.type,
        describe(exc),
        _traceback(exc),
        now_ms(),
    )


async def count(db: Database, projection: str) -> int:
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM projection_failures WHERE projection = $1", projection
        )
    )


async def retry(store: EventStore, db: Database, projection: str, apply: Apply) -> RetryResult:
    """Apply `projection`'s recorded failures again, in position order; delete those that now
    apply, and note the new error and one more attempt on those that still fail."""
    positions = [
        int(r["position"])
        for r in await db.fetch(
            "SELECT position FROM projection_failures WHERE projection = $1 ORDER BY position",
            projection,
        )
    ]
    applied = failing = 0
    for position in positions:
        (event,) = await store.read_all(position - 1, 1)
        try:
            async with db.transaction() as conn:
                taken = await conn.fetchval(
                    "DELETE FROM projection_failures WHERE projection = $1 AND position = $2"
                    " RETURNING position",
                    projection,
                    position,
                )
                if taken is None:
                    continue  # another retry applied it meanwhile
                await apply(conn, [event])
            applied += 1
        except Exception as exc:
            logger.warning(
                "projection failure still fails",
                extra={
                    "action": "projection.retry_failed",
                    "projection": projection,
                    "position": position,
                    "error": describe(exc),
                },
            )
            await db.execute(
                "UPDATE projection_failures SET error = $3, traceback = $4, failed_at = $5,"
                " attempts = attempts + 1 WHERE projection = $1 AND position = $2",
                projection,
                position,
                describe(exc),
                _traceback(exc),
                now_ms(),
            )
            failing += 1
    return RetryResult(applied, failing)


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def now_ms() -> int:
    return int(time.time() * 1000)
