"""The projection runner: folds the log into read models, exactly once.

Each projection reads the log from its checkpoint; every batch is applied in one database
transaction that also advances the checkpoint, so an effect is never applied twice nor skipped,
even across restarts or with runners on several nodes (the checkpoint row is locked and re-read in
the transaction; events at or below it are not applied again). A batch whose `apply` fails is
retried with backoff, never skipped: the projection stalls visibly (its lag grows) instead.
Batches with no event of the projection's types skip the transaction; their checkpoint is written
at most every `idle_checkpoint_interval` seconds (a restart re-reads them, applying nothing), and
the next read waits up to `lull` seconds unless a `wait_for` caller is waiting: a log of mostly
document edits is then read in a few pages a second rather than one query per commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from eventstore import EventStore, RecordedEvent
from eventstore.progress import Progress
from sqldb import Connection, Database

logger = logging.getLogger(__name__)

Apply = Callable[[Connection, list[RecordedEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: its name (the checkpoint key), the event types it handles, and `apply`,
    which receives only events of those types, in position order, inside the transaction."""

    name: str
    event_types: frozenset[str]
    apply: Apply


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_positions: int
    last_error: str | None


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
        self._errors: dict[str, str | None] = {p.name: None for p in projections}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load (or create) each checkpoint, then follow the log in the background."""
        for projection in self._projections:
            self._progress[projection.name].position = await self._checkpoint(projection.name)
        self._tasks = [
            asyncio.create_task(self._follow(p), name=f"projection-{p.name}")
            for p in self._projections
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # unlike suppressing CancelledError, keeps our own
        for task in tasks:
            if not task.cancelled():
                task.result()  # it ended before the cancellation landed: its error, if any

    async def wait_for(self, position: int, timeout: float = 5.0) -> None:
        """Return once every projection has applied the log up to `position` (read-your-writes);
        TimeoutError if that takes longer than `timeout` seconds."""
        async with asyncio.timeout(timeout):
            for progress in self._progress.values():
                await progress.wait_for(position)

    async def status(self) -> list[ProjectionStatus]:
        head = await self._store.head_position()
        return [
            ProjectionStatus(name, pos, head, max(head - pos, 0), self._errors[name])
            for name, pos in ((n, p.position) for n, p in self._progress.items())
        ]

    async def _checkpoint(self, name: str) -> int:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO projection_checkpoints (name, position, updated_at)"
                " VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
                name,
                _now_ms(),
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
            backoff = 0.05
            while True:
                try:
                    position = await self._apply(projection, batch)
                    self._errors[projection.name] = None
                    break
                except Exception as exc:
                    self._errors[projection.name] = f"{type(exc).__name__}: {exc}"
                    logger.exception(
                        "projection batch failed; retrying",
                        extra={
                            "action": "projection.retry",
                            "projection": projection.name,
                            "position": batch[0].position,
                        },
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
            saved_at = loop.time()
            await progress.advance(position)

    async def _apply(self, projection: Projection, batch: list[RecordedEvent]) -> int:
        lock = " FOR UPDATE" if self._db.kind == "postgres" else ""
        async with self._db.transaction() as conn:
            current = int(
                await conn.fetchval(
                    f"SELECT position FROM projection_checkpoints WHERE name = $1{lock}",
                    projection.name,
                )
            )
            events = [e for e in batch if e.position > current and e.type in projection.event_types]
            if events:
                await projection.apply(conn, events)
            last = max(current, batch[-1].position)
            if last != current:
                await conn.execute(
                    "UPDATE projection_checkpoints SET position = $2, updated_at = $3"
                    " WHERE name = $1",
                    projection.name,
                    last,
                    _now_ms(),
                )
        return last


def _now_ms() -> int:
    return int(time.time() * 1000)
