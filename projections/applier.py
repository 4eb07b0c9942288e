"""How the runner applies a batch: in one transaction with the checkpoint it advances, by the
projection's failure policy (projections/runner.py says which), retried with capped backoff while
it fails, and counted for the apply rate. The same for the live tables and a rebuild's twins.

The transaction moves the checkpoint from where this applier last left it, on the condition that
it is still there (`execute_changing`), rather than reading it first under its lock: on Postgres one
round trip fewer; on SQLite the batch's statements (unless its fold reads) go to the writer
thread in one hop, so the file's write lock, which the log's commits wait for, is not held
across turns of the event loop. Where it is not (another runner moved it: a standby that took
over meanwhile), or where this applier does not know it (its first batch, after a failure), the
checkpoint is read under its lock, as a runner that takes over does. A fold may write the same
way, its rows moved on from what it last wrote on that condition (the document model does): a
`RowCountError` from either fails the transaction, and the batch is prepared again (the fold
loads its state again: see projections/document.py) and applied once more after the checkpoint
read under its lock; a second one is a failure like any other, retried with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from eventstore import RecordedEvent
from projections import failures
from projections.failures import now_ms
from projections.lag import Throughput
from projections.projection import Target
from sqldb import Connection, Database, RowCountError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RebuildSuperseded(Exception):
    """The rebuild's checkpoint row is gone: another rebuild started over, or swapped in."""


@dataclass(slots=True)
class Stall:
    error: str
    since: datetime


class Applier:
    """Applies batches for every target of one runner; keeps each target's stall and rate."""

    def __init__(self, db: Database, *, max_backoff: float, rate_window: float) -> None:
        self._db = db
        self._max_backoff = max_backoff
        self._rate_window = rate_window
        self.stalls: dict[str, Stall | None] = {}
        self.throughput: dict[str, Throughput] = {}
        # each target's checkpoint position as this applier's last transaction left it
        self._positions: dict[str, int] = {}

    def rate(self, checkpoint: str) -> float:
        throughput = self.throughput.get(checkpoint)
        return 0.0 if throughput is None else throughput.rate()

    def forget(self, checkpoint: str) -> None:
        """Drop what is kept of a target that ended (a rebuild)."""
        self.stalls.pop(checkpoint, None)
        self.throughput.pop(checkpoint, None)
        self._positions.pop(checkpoint, None)

    async def apply_until_done(self, target: Target, batch: list[RecordedEvent]) -> int:
        """Apply `batch` by the projection's policy, retrying with backoff while that fails."""
        each = False

        async def attempt() -> int:
            nonlocal each
            if each:
                return await self._apply_each(target, batch)
            try:
                return await self._apply(target, batch)
            except Exception:
                if target.projection.policy != "skip":
                    raise
                each = True  # find the bad events: apply the batch one event at a time
                return await self._apply_each(target, batch)

        return await self.until_done(target, attempt, batch[0].position)

    async def until_done(
        self, target: Target, attempt: Callable[[], Awaitable[T]], position: int | None = None
    ) -> T:
        """`attempt` until it succeeds, with capped exponential backoff, stalling visibly."""
        backoff = 0.05
        while True:
            try:
                result = await attempt()
            except Exception as exc:
                await self._stalled(target, position, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self.stalls.get(target.checkpoint) is not None:
                self.stalls[target.checkpoint] = None
                logger.info(
                    "projection resumed",
                    extra={"action": "projection.resumed", "projection": target.checkpoint},
                )
            return result

    async def _stalled(self, target: Target, position: int | None, exc: Exception) -> None:
        """Say, in the log, in `status()` and in the checkpoint row, that the batch fails."""
        error = failures.describe(exc)
        stall = self.stalls.get(target.checkpoint)
        if stall is None:
            stall = self.stalls[target.checkpoint] = Stall(error, datetime.now(UTC))
        stall.error = error
        logger.exception(
            "projection batch failed; retrying",
            extra={
                "action": "projection.retry",
                "projection": target.checkpoint,
                "position": position,
            },
        )
        try:
            await self._db.execute(
                "UPDATE projection_checkpoints SET failing_since = COALESCE(failing_since, $2),"
                " last_error = $3 WHERE name = $1",
                target.checkpoint,
                int(stall.since.timestamp() * 1000),
                error,
            )
        except Exception:  # the database may be the cause; the stall is logged above
            logger.warning(
                "could not record the projection's stall",
                exc_info=True,
                extra={"action": "projection.stall_unrecorded", "projection": target.checkpoint},
            )

    async def _apply_each(self, target: Target, batch: list[RecordedEvent]) -> int:
        """Apply the batch's events of the projection's types one by one; record each that
        fails, with the checkpoint that moves past it, and go on."""
        for event in batch:
            if event.type not in target.projection.event_types:
                continue
            try:
                await self._apply(target, [event])
            except Exception as exc:
                logger.exception(
                    "projection skips an event it cannot apply",
                    extra={
                        "action": "projection.skip",
                        "projection": target.checkpoint,
                        "position": event.position,
                    },
                )
                await self._skip(target, event, exc)
        return await self._apply(target, batch)  # moves the checkpoint to the batch's end

    async def _skip(self, target: Target, event: RecordedEvent, exc: Exception) -> None:
        self._positions.pop(target.checkpoint, None)
        async with self._db.transaction() as conn:
            if await self._locked_checkpoint(conn, target) >= event.position:
                return  # another runner applied or recorded it meanwhile
            await failures.record(conn, target.checkpoint, event, exc)
            await self._save_checkpoint(conn, target, event.position)

    async def prepare_only(self, target: Target, batch: list[RecordedEvent]) -> None:
        """Show `prepare` the batch's events of the types it only prepares (`Projection.prepares`)
        of a batch with none of the projection's types (which needs no transaction), retrying
        with backoff while that fails."""
        seen = [e for e in batch if e.type in target.projection.prepares]
        if target.prepare is not None and seen:
            prepare = target.prepare
            await self.until_done(target, lambda: prepare(seen), batch[0].position)

    async def _apply(self, target: Target, batch: list[RecordedEvent]) -> int:
        known = self._positions.pop(target.checkpoint, None)  # kept again once applied
        try:
            return await self._apply_once(target, batch, known)
        except RowCountError:  # something moved: prepared and applied again below, once
            logger.info(
                "a row the batch was to move on from where this runner left it had moved"
                " (the checkpoint, or a read model's row); preparing the batch again",
                extra={"action": "projection.moved_under", "projection": target.checkpoint},
            )
        return await self._apply_once(target, batch, None)

    async def _apply_once(
        self, target: Target, batch: list[RecordedEvent], known: int | None
    ) -> int:
        """Prepare and apply the batch after the checkpoint: after `known` if it is still there
        (RowCountError if not), else after the checkpoint read under its lock."""
        types = target.projection.event_types
        if target.prepare is not None:  # before the transaction: see projection.Fold
            seen = types | target.projection.prepares
            await target.prepare([e for e in batch if e.type in seen])
        if known is None:
            async with self._db.transaction() as conn:
                current = await self._locked_checkpoint(conn, target)
                events, last = _after(batch, current, types)
                await self._write(conn, target, events, current, last)
        else:
            events, last = _after(batch, known, types)
            if last != known:  # else nothing to write: no transaction
                async with self._db.transaction() as conn:
                    await self._write(conn, target, events, known, last, conditional=True)
        self._positions[target.checkpoint] = last
        throughput = self.throughput.get(target.checkpoint)
        if throughput is None:
            throughput = self.throughput[target.checkpoint] = Throughput(self._rate_window)
        throughput.applied(len(events))
        return last

    async def _locked_checkpoint(self, conn: Connection, target: Target) -> int:
        lock = " FOR UPDATE" if self._db.kind == "postgres" else ""
        position = await conn.fetchval(
            f"SELECT position FROM projection_checkpoints WHERE name = $1{lock}",
            target.checkpoint,
        )
        if position is None:  # a rebuild's row that another rebuild or a swap removed
            raise RebuildSuperseded(target.checkpoint)
        return int(position)

    async def _write(
        self,
        conn: Connection,
        target: Target,
        events: list[RecordedEvent],
        current: int,
        last: int,
        *,
        conditional: bool = False,
    ) -> None:
        """Move the checkpoint from `current` to `last` (`conditional`: only if it is still at
        `current`, RowCountError if not) and apply `events`, in `conn`'s transaction."""
        if last != current:
            await self._save_checkpoint(conn, target, last, since=current if conditional else None)
        if events:
            await target.apply(conn, events)

    async def _save_checkpoint(
        self, conn: Connection, target: Target, last: int, *, since: int | None = None
    ) -> None:
        """Move the checkpoint to `last`; with `since`, only from there (RowCountError if it is
        elsewhere)."""
        sql = (
            "UPDATE projection_checkpoints SET position = $2, updated_at = $3,"
            " failing_since = NULL, last_error = NULL WHERE name = $1"
        )
        if since is None:
            await conn.execute(sql, target.checkpoint, last, now_ms())
        else:
            await conn.execute_changing(
                1, f"{sql} AND position = $4", target.checkpoint, last, now_ms(), since
            )


def _after(
    batch: list[RecordedEvent], checkpoint: int, types: frozenset[str]
) -> tuple[list[RecordedEvent], int]:
    """The batch's events of `types` after `checkpoint`, and where the checkpoint moves to."""
    events = [e for e in batch if e.position > checkpoint and e.type in types]
    return events, max(checkpoint, batch[-1].position)
