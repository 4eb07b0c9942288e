"""The projection runner: folds the log into read models, exactly once.

Each projection reads the log from its checkpoint; every batch is applied in one database
transaction that also advances the checkpoint, so an effect is never applied twice nor skipped,
even across restarts or with runners on several nodes (the checkpoint row is locked and re-read in
the transaction; events at or below it are not applied again). What happens when `apply` fails
is the projection's policy: `stop` (the default) retries the batch with capped exponential
backoff, never skipping it: the projection stalls visibly (state `failing`, the error and since
when, in `status()` and in its checkpoint row) until the cause goes. `skip` applies the failed
batch again event by event, and records each event that still fails in `projection_failures`
(projections/failures.py) in the transaction that moves the checkpoint past it.
Batches with no event of the projection's types skip the transaction; their checkpoint is written
at most every `idle_checkpoint_interval` seconds (a restart re-reads them, applying nothing), and
the next read waits up to `lull` seconds unless a `wait_for` caller is waiting: a log of mostly
document edits is then read in a few pages a second rather than one query per commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from eventstore import EventStore, RecordedEvent
from eventstore.progress import Progress
from projections import failures
from projections.failures import Apply, RetryResult, now_ms
from projections.lag import ProjectionStatus, Throughput, from_ms, seconds_behind
from sqldb import Connection, Database

logger = logging.getLogger(__name__)

Policy = Literal["stop", "skip"]

__all__ = ["Apply", "Policy", "Projection", "ProjectionRunner", "ProjectionStatus", "RetryResult"]


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: its name (the checkpoint key), the event types it handles, and `apply`,
    which receives only events of those types, in position order, inside the transaction; and
    what to do when `apply` fails (`policy`, see the module's docstring)."""

    name: str
    event_types: frozenset[str]
    apply: Apply
    policy: Policy = field(default="stop", kw_only=True)


@dataclass(slots=True)
class _Stall:
    error: str
    since: datetime


class ProjectionRunner:
    def __init__(
        self,
        store: EventStore,
        db: Database,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        max_backoff: float = 5.0,
        idle_checkpoint_interval: float = 1.0,
        lull: float = 0.05,
        rate_window: float = 60.0,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        self._store = store
        self._db = db
        self._projections = list(projections)
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self._idle_checkpoint_interval = idle_checkpoint_interval
        self._progress = {p.name: Progress(0, lull) for p in projections}
        self._stalls: dict[str, _Stall | None] = {p.name: None for p in projections}
        self._throughput = {p.name: Throughput(rate_window) for p in projections}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    async def start(self) -> None:
        """Load (or create) each checkpoint, then follow the log in the background."""
        for projection in self._projections:
            self._progress[projection.name].position = await self._checkpoint(projection.name)
        self._tasks = [
            asyncio.create_task(self._follow(p), name=f"projection-{p.name}")
            for p in self._projections
        ]
        self._started = True

    async def stop(self) -> None:
        self._started = False
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # unlike suppressing CancelledError, keeps our own
        for task in tasks:
            if not task.cancelled():
                task.result()  # it ended before the cancellation landed: its error, if any

    async def wait_for(
        self, position: int, timeout: float = 5.0, only: Collection[str] | None = None
    ) -> None:
        """Return once every projection (or those named in `only`) has applied the log up to
        `position` (read-your-writes); TimeoutError if that takes longer than `timeout`
        seconds. A command waits only for the read models it answers from, so a slow or
        stalled other projection does not hold it up."""
        async with asyncio.timeout(timeout):
            for name, progress in self._progress.items():
                if only is None or name in only:
                    await progress.wait_for(position)

    async def status(self) -> list[ProjectionStatus]:
        """Each projection's position, lag, apply rate, failures and state. Without `start`
        (a command that only reports), from the checkpoints the followers wrote."""
        head = await self._store.head_position()
        rows = {
            r["name"]: r
            for r in await self._db.fetch(
                "SELECT name, position, failing_since, last_error FROM projection_checkpoints"
            )
        }
        statuses = []
        for projection in self._projections:
            name = projection.name
            row = rows.get(name)
            stall = self._stalls[name]
            if self._started:
                position = self._progress[name].position
                rate: float | None = self._throughput[name].rate()
                state: Literal["following", "failing", "stopped"] = (
                    "following" if stall is None else "failing"
                )
            else:
                position = 0 if row is None else int(row["position"])
                rate = None
                since = None if row is None else from_ms(row["failing_since"])
                stall = None if since is None or row is None else _Stall(row["last_error"], since)
                state = "stopped" if stall is None else "failing"
            pending = await self._store.read_all(position, 1) if position < head else []
            statuses.append(
                ProjectionStatus(
                    name=name,
                    position=position,
                    head=head,
                    lag_positions=max(head - position, 0),
                    seconds_behind=seconds_behind(pending[0].recorded_at if pending else None),
                    events_per_second=rate,
                    failures=await failures.count(self._db, name),
                    state=state,
                    last_error=None if stall is None else stall.error,
                    failing_since=None if stall is None else stall.since,
                )
            )
        return statuses

    async def retry_failures(self, name: str) -> RetryResult:
        """Apply projection `name`'s recorded failures again (`jacameno projections retry`)."""
        projection = next((p for p in self._projections if p.name == name), None)
        if projection is None:
            raise KeyError(name)
        return await failures.retry(self._store, self._db, name, projection.apply)

    async def _checkpoint(self, name: str) -> int:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO projection_checkpoints (name, position, updated_at)"
                " VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
                name,
                now_ms(),
            )
            return int(
                await conn.fetchval(
                    "SELECT position FROM projection_checkpoints WHERE name = $1", name
                )
            )

    async def _follow(self, projection: Projection) -> None:
        subscription = self._store.subscribe(
            self._progress[projection.name].position, batch_size=self._batch_size
        )
        loop = asyncio.get_running_loop()
        saved_at = loop.time()
        progress = self._progress[projection.name]
        while True:
            batch = await subscription.next_batch()
            # A batch that concerns this projection in nothing (most of the log is document
            # edits) needs no transaction: move on, writing the checkpoint now and then only, so
            # that a restart does not read far back.
            if (
                not any(e.type in projection.event_types for e in batch)
                and loop.time() - saved_at < self._idle_checkpoint_interval
            ):
                await progress.advance(batch[-1].position)
                await progress.rest()
                continue
            position = await self._apply_until_done(projection, batch)
            saved_at = loop.time()
            await progress.advance(position)

    async def _apply_until_done(self, projection: Projection, batch: list[RecordedEvent]) -> int:
        """Apply `batch` by the projection's policy, retrying with backoff while that fails."""
        backoff = 0.05
        each = False
        while True:
            try:
                if each:
                    position = await self._apply_each(projection, batch)
                else:
                    position = await self._apply(projection, batch)
            except Exception as exc:
                if projection.policy == "skip" and not each:
                    each = True  # find the bad events: apply the batch one event at a time
                    continue
                await self._stalled(projection, batch, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self._stalls[projection.name] is not None:
                self._stalls[projection.name] = None
                logger.info(
                    "projection resumed",
                    extra={"action": "projection.resumed", "projection": projection.name},
                )
            return position

    async def _stalled(
        self, projection: Projection, batch: list[RecordedEvent], exc: Exception
    ) -> None:
        """Say, in the log, in `status()` and in the checkpoint row, that the batch fails."""
        error = failures.describe(exc)
        stall = self._stalls[projection.name]
        if stall is None:
            stall = self._stalls[projection.name] = _Stall(error, datetime.now(UTC))
        stall.error = error
        logger.exception(
            "projection batch failed; retrying",
            extra={
                "action": "projection.retry",
                "projection": projection.name,
                "position": batch[0].position,
            },
        )
        try:
            await self._db.execute(
                "UPDATE projection_checkpoints SET failing_since = COALESCE(failing_since, $2),"
                " last_error = $3 WHERE name = $1",
                projection.name,
                int(stall.since.timestamp() * 1000),
                error,
            )
        except Exception:  # the database may be the cause; the stall is logged above
            logger.warning(
                "could not record the projection's stall",
                exc_info=True,
                extra={"action": "projection.stall_unrecorded", "projection": projection.name},
            )

    async def _apply_each(self, projection: Projection, batch: list[RecordedEvent]) -> int:
        """Apply the batch's events of the projection's types one by one; record each that
        fails, with the checkpoint that moves past it, and go on."""
        for event in batch:
            if event.type not in projection.event_types:
                continue
            try:
                await self._apply(projection, [event])
            except Exception as exc:
                logger.exception(
                    "projection skips an event it cannot apply",
                    extra={
                        "action": "projection.skip",
                        "projection": projection.name,
                        "position": event.position,
                    },
                )
                await self._skip(projection, event, exc)
        return await self._apply(projection, batch)  # moves the checkpoint to the batch's end

    async def _skip(self, projection: Projection, event: RecordedEvent, exc: Exception) -> None:
        async with self._db.transaction() as conn:
            if await self._locked_checkpoint(conn, projection) >= event.position:
                return  # another runner applied or recorded it meanwhile
            await failures.record(conn, projection.name, event, exc)
            await self._save_checkpoint(conn, projection, event.position)

    async def _apply(self, projection: Projection, batch: list[RecordedEvent]) -> int:
        async with self._db.transaction() as conn:
            current = await self._locked_checkpoint(conn, projection)
            events = [e for e in batch if e.position > current and e.type in projection.event_types]
            if events:
                await projection.apply(conn, events)
            last = max(current, batch[-1].position)
            if last != current:
                await self._save_checkpoint(conn, projection, last)
        self._throughput[projection.name].applied(len(events))
        return last

    async def _locked_checkpoint(self, conn: Connection, projection: Projection) -> int:
        lock = " FOR UPDATE" if self._db.kind == "postgres" else ""
        return int(
            await conn.fetchval(
                f"SELECT position FROM projection_checkpoints WHERE name = $1{lock}",
                projection.name,
            )
        )

    async def _save_checkpoint(self, conn: Connection, projection: Projection, last: int) -> None:
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = $3,"
            " failing_since = NULL, last_error = NULL WHERE name = $1",
            projection.name,
            last,
            now_ms(),
        )
