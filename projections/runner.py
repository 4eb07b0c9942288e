"""The projection runner: folds the log into read models, exactly once.

Each projection reads the log from its checkpoint; every batch is applied in one database
transaction that also advances the checkpoint, so an effect is never applied twice nor skipped,
even across restarts or with runners on several nodes (the checkpoint moves only from where this
runner last left it, else it is locked and re-read in the transaction: projections/applier.py;
events at or below it are not applied again). What happens when `apply` fails
is the projection's policy: `stop` (the default) retries the batch with capped exponential
backoff, never skipping it: the projection stalls visibly (state `failing`, the error and since
when, in `status()` and in its checkpoint row) until the cause goes. `skip` applies the failed
batch again event by event, and records each event that still fails in `projection_failures`
(projections/failures.py) in the transaction that moves the checkpoint past it.
Batches with no event of the projection's types skip the transaction; their checkpoint is written
at most every `idle_checkpoint_interval` seconds (a restart re-reads them, applying nothing). After
any batch short of a full page, the next read waits up to `lull` seconds unless a `wait_for`
caller is waiting: a log of mostly document edits is then read in a few pages a second rather
than one query per commit, and the edits of a busy studio are applied a few dozen to a
transaction rather than one each.

One process at a time runs each projection across the nodes (a lock, sqldb/locks.py); the others
stand by, answering read-your-writes from the active one's checkpoint, and take over when its
lock goes. A runner made with `leads=False` only ever stands by (a serving node beside a
`jacameno projections run` process: it never folds the log on its own event loop). Batches are
applied by projections/applier.py, for the live tables and for a rebuild's twins alike
(projections/rebuild.py: rebuilds by hand, and on a change of schema version)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence

from eventstore import EventStore, EventStoreError
from eventstore.progress import STALLED_AFTER, WAIT_LIMIT, Progress
from projections import failures, rebuild
from projections.applier import Applier, RebuildSuperseded, Stall
from projections.failures import Apply, RetryResult, now_ms
from projections.lag import ProjectionStatus, Role, State, from_ms, seconds_behind
from projections.projection import Policy, Projection, Target
from projections.rebuild import rebuild_checkpoint
from projections.tables import live, rebuilding
from sqldb import Database, DatabaseError, Row
from sqldb.locks import LocalLocks, Lock, Locks

logger = logging.getLogger(__name__)

# Events per read and per apply transaction. Large enough that a fold's work per project and
# batch (the document fold reads each changed project's document into rows once per batch) is
# spread over many events while catching up or rebuilding: 2,000 made the document fold 1.3
# times as fast as 500 on the benchmark's studio log; a batch's transaction stays well under a
# second. Following a live log, batches are as small as what arrived since the last one.
BATCH_SIZE = 2000

# How often a standby reads the active runner's progress while a caller waits on it.
STANDBY_WAITING_POLL = 0.02

__all__ = [
    "Apply",
    "Policy",
    "Projection",
    "ProjectionRunner",
    "ProjectionStatus",
    "RebuildRunning",
    "RebuildSuperseded",
    "RetryResult",
]


class RebuildRunning(Exception):
    """Another rebuild of the projection holds its lock."""


class ProjectionRunner:
    def __init__(
        self,
        store: EventStore,
        db: Database,
        projections: Sequence[Projection],
        *,
        batch_size: int = BATCH_SIZE,
        max_backoff: float = 5.0,
        idle_checkpoint_interval: float = 1.0,
        lull: float = 0.05,
        rate_window: float = 60.0,
        locks: Locks | None = None,
        standby_poll: float = 1.0,
        leads: bool = True,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        self._store = store
        self._db = db
        self._projections = list(projections)
        self._batch_size = batch_size
        self._idle_checkpoint_interval = idle_checkpoint_interval
        self._progress = {p.name: Progress(0, lull) for p in projections}
        self._live = {p.name: Target.of(p.name, p, live(p.tables)) for p in projections}
        self._applier = Applier(db, max_backoff=max_backoff, rate_window=rate_window)
        self._locks: Locks = LocalLocks() if locks is None else locks
        self._standby_poll = standby_poll
        self._leads = leads
        self._roles: dict[str, Role] = {p.name: "stopped" for p in projections}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[int]] = set()
        self._started = False

    async def start(self) -> None:
        """Create each projection's tables and checkpoint where missing, then run each in the
        background: wait to be its one active runner (tracking the active one's checkpoint
        meanwhile), rebuild it if its schema version changed, and follow the log."""
        await self.prepare()
        self._tasks = [
            asyncio.create_task(self._run(p), name=f"projection-{p.name}")
            for p in self._projections
        ]
        self._started = True

    async def stop(self) -> None:
        self._started = False
        background = list(self._background)
        tasks, self._tasks = self._tasks, []
        for task in (*tasks, *background):
            task.cancel()
        if tasks or background:
            await asyncio.wait([*tasks, *background])  # keeps our own CancelledError
        await self._locks.close()
        for name in self._progress:
            self._roles[name] = "stopped"
        for task in tasks:
            if not task.cancelled():
                task.result()  # it ended before the cancellation landed: its error, if any

    async def wait_for(
        self,
        position: int,
        timeout: float = STALLED_AFTER,
        only: Collection[str] | None = None,
        *,
        limit: float = WAIT_LIMIT,
    ) -> None:
        """Return once every projection (or those named in `only`) has applied the log up to
        `position` (read-your-writes); TimeoutError once one of them has not moved for
        `timeout` seconds (it is stuck: failing, or its database gone), or after `limit`
        seconds in all. One that moves, however slowly (a loaded node reading through a
        burst of edits), keeps the caller: what it waits for was already appended, and an
        error now would tell the client that its change did not happen. A command waits only
        for the read models it answers from, so a slow or stalled other projection does not
        hold it up."""
        async with asyncio.timeout(max(limit, timeout)):
            for name, progress in self._progress.items():
                if only is None or name in only:
                    await progress.wait_for(position, stalled_after=timeout)

    async def status(self, *, rebuilds: bool = False) -> list[ProjectionStatus]:
        """Each projection's position, lag, apply rate, failures and state, and with `rebuilds`
        a row for each rebuild under way (on any node, named `<projection>__rebuild`). Without
        `start` (a command that only reports), from the checkpoints the runners wrote."""
        head = await self._store.head_position()
        rows = {
            r["name"]: r
            for r in await self._db.fetch(
                "SELECT name, position, failing_since, last_error FROM projection_checkpoints"
            )
        }
        statuses = []
        for projection in self._projections:
            for name in (projection.name, rebuild_checkpoint(projection.name)):
                row = rows.get(name)
                if name != projection.name and (row is None or not rebuilds):
                    continue
                statuses.append(await self._status(name, row, head))
        return statuses

    async def _status(self, name: str, row: Row | None, head: int) -> ProjectionStatus:
        role = self._roles.get(name)
        rate = None
        stall = self._applier.stalls.get(name)
        if role == "following":
            position = self._progress[name].position
            rate = self._applier.rate(name)
        else:
            position = 0 if row is None else int(row["position"])
            if role == "rebuilding" and name in self._applier.throughput:
                rate = self._applier.rate(name)
            elif role != "rebuilding":  # another process runs it: what it wrote
                since = None if row is None else from_ms(row["failing_since"])
                stall = None if since is None or row is None else Stall(row["last_error"], since)
        if role is None or role == "stopped":
            role = "stopped" if name in self._progress else "rebuilding"
        state: State = "failing" if stall is not None else role
        pending = await self._store.read_all(position, 1) if position < head else []
        return ProjectionStatus(
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

    async def retry_failures(self, name: str) -> RetryResult:
        """Apply projection `name`'s recorded failures again (`jacameno projections retry`)."""
        target = self._live.get(name)
        if target is None:
            raise KeyError(name)
        return await failures.retry(self._store, self._db, name, target.apply)

    async def rebuild(self, name: str) -> int:
        """Rebuild projection `name` from position 0 beside its live tables and swap it in
        (projections/rebuild.py); return the position the new model stands at. Raises
        KeyError for an unknown projection, RebuildRunning if another rebuild of it (on any
        node) holds its lock."""
        return await self._rebuilding(*await self._rebuild_lock(name))

    async def rebuild_in_background(self, name: str) -> None:
        """Take the rebuild's lock now (raising as `rebuild` does), then rebuild in a task that
        `stop` cancels; its progress shows in `status(rebuilds=True)`."""
        task = asyncio.create_task(
            self._rebuilding(*await self._rebuild_lock(name)), name=f"rebuild-{name}"
        )
        self._background.add(task)
        task.add_done_callback(self._rebuilt)

    def _rebuilt(self, task: asyncio.Task[int]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "a rebuild in the background failed",
                exc_info=task.exception(),
                extra={"action": "projection.rebuild_failed", "task": task.get_name()},
            )

    async def _rebuild_lock(self, name: str) -> tuple[Projection, Lock]:
        projection = self._live[name].projection
        lock = await self._locks.try_acquire(rebuild_checkpoint(name))
        if lock is None:
            raise RebuildRunning(name)
        return projection, lock

    async def _rebuilding(self, projection: Projection, lock: Lock) -> int:
        try:
            await self._prepare(projection)  # a command's runner was not started
            return await self._rebuild(projection)
        finally:
            await self._locks.release(lock)

    async def _rebuild(self, projection: Projection) -> int:
        name = projection.name
        target = Target.of(rebuild_checkpoint(name), projection, rebuilding(projection.tables))
        self._roles[target.checkpoint] = "rebuilding"
        self._applier.forget(target.checkpoint)
        logger.info(
            "projection rebuild started",
            extra={"action": "projection.rebuild_started", "projection": name},
        )
        try:
            await rebuild.prepare(self._db, name, projection.tables)
            position = 0
            while batch := await self._store.read_all(position, self._batch_size):
                position = await self._applier.apply_until_done(target, batch)
            position = await self._applier.until_done(
                target,
                lambda: rebuild.swap(
                    self._db,
                    self._store,
                    name=name,
                    tables=projection.tables,
                    version=projection.version,
                    event_types=projection.event_types,
                    apply=target.apply,
                ),
            )
        finally:
            del self._roles[target.checkpoint]
            self._applier.forget(target.checkpoint)
        logger.info(
            "projection rebuilt and swapped in",
            extra={"action": "projection.rebuilt", "projection": name, "position": position},
        )
        return position

    async def prepare(self) -> None:
        """Create the projections' tables and checkpoints where missing (`start` does it)."""
        for projection in self._projections:
            position, _ = await self._prepare(projection)
            self._progress[projection.name].position = position

    async def _prepare(self, projection: Projection) -> tuple[int, int]:
        """Create the projection's checkpoint row and live tables where missing (tables made now
        are empty: the projection then starts from position 0 at the current schema version);
        return the checkpoint's position and schema version."""
        async with self._db.transaction() as conn:
            await rebuild.serialize(conn, self._db.kind, projection.name)
            await conn.execute(
                "INSERT INTO projection_checkpoints (name, position, updated_at, schema_version)"
                " VALUES ($1, 0, $2, $3) ON CONFLICT (name) DO NOTHING",
                projection.name,
                now_ms(),
                projection.version,
            )
            if await rebuild.create_missing(conn, self._db.kind, projection.tables):
                await conn.execute(
                    "UPDATE projection_checkpoints SET position = 0, schema_version = $2"
                    " WHERE name = $1",
                    projection.name,
                    projection.version,
                )
            row = await conn.fetchrow(
                "SELECT position, schema_version FROM projection_checkpoints WHERE name = $1",
                projection.name,
            )
        assert row is not None
        return int(row["position"]), int(row["schema_version"])

    async def _run(self, projection: Projection) -> None:
        """Be the one active runner of `projection`, or stand by until the active one dies."""
        name = projection.name
        progress = self._progress[name]
        while True:
            self._roles[name] = "standby"
            lock = await self._locks.try_acquire(name) if self._leads else None
            if lock is None:
                try:
                    position = await self._standby_position(projection)
                except (DatabaseError, EventStoreError):  # it heals; the active runner says more
                    logger.warning(
                        "a standby could not read the projection's progress",
                        exc_info=True,
                        extra={"action": "projection.standby_read_failed", "projection": name},
                    )
                    position = progress.position
                if position > progress.position:
                    await progress.advance(position)
                if progress.waiting:
                    await asyncio.sleep(STANDBY_WAITING_POLL)
                else:
                    await progress.rest(self._standby_poll)
                continue
            try:
                await self._lead(projection, lock)
            finally:
                await self._locks.release(lock)
            logger.warning(
                "lost the projection's lock; standing by",
                extra={"action": "projection.standby", "projection": name},
            )

    async def _standby_position(self, projection: Projection) -> int:
        """How far the active runner (on another node) has applied the projection, as far as a
        standby can tell: its checkpoint row, and past it the events after the row that are
        none of the projection's types (the active runner writes its checkpoint over such
        events only now and then; there is nothing in them to wait for)."""
        position, _ = await self._checkpoint(projection.name)
        if not self._progress[projection.name].waiting:
            return position
        pending = await self._store.read_all(position, self._batch_size)
        for event in pending:
            if event.type in projection.event_types:
                return event.position - 1
        return pending[-1].position if pending else position

    async def _lead(self, projection: Projection, lock: Lock) -> None:
        """Rebuild the projection if its schema version changed, then follow the log, until
        `lock` is lost."""
        lead = asyncio.create_task(self._follow(projection), name=f"lead-{projection.name}")
        lost = asyncio.create_task(lock.lost.wait())
        try:
            await asyncio.wait([lead, lost], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (lead, lost):
                task.cancel()
            await asyncio.wait([lead, lost])
        if not lead.cancelled():
            lead.result()  # its error, if it ended by one

    async def _checkpoint(self, name: str) -> tuple[int, int]:
        row = await self._db.fetchrow(
            "SELECT position, schema_version FROM projection_checkpoints WHERE name = $1", name
        )
        return (0, 0) if row is None else (int(row["position"]), int(row["schema_version"]))

    async def _follow(self, projection: Projection) -> None:
        name = projection.name
        progress = self._progress[name]
        position, version = await self._applier.until_done(
            self._live[name], lambda: self._checkpoint(name)
        )
        if version != projection.version:
            self._roles[name] = "rebuilding"
            logger.info(
                "projection's schema version changed; rebuilding it beside the live tables",
                extra={
                    "action": "projection.version_changed",
                    "projection": name,
                    "from": version,
                    "to": projection.version,
                },
            )
            lock = None
            while lock is None:  # a rebuild someone started by hand finishes first
                lock = await self._locks.try_acquire(rebuild_checkpoint(name))
                if lock is None:
                    await asyncio.sleep(self._standby_poll)
            try:
                position = await self._rebuild(projection)
            finally:
                await self._locks.release(lock)
        self._roles[name] = "following"
        await progress.advance(max(position, progress.position))
        target = self._live[name]
        subscription = self._store.subscribe(progress.position, batch_size=self._batch_size)
        loop = asyncio.get_running_loop()
        saved_at = loop.time()
        while True:
            batch = await subscription.next_batch()
            # A batch that concerns this projection in nothing (most of the log is document
            # edits) needs no transaction: move on, writing the checkpoint now and then only, so
            # that a restart does not read far back.
            if (
                not any(e.type in projection.event_types for e in batch)
                and loop.time() - saved_at < self._idle_checkpoint_interval
            ):
                await self._applier.prepare_only(target, batch)
                await progress.advance(batch[-1].position)
                await progress.rest()
                continue
            position = await self._applier.apply_until_done(target, batch)
            saved_at = loop.time()
            await progress.advance(position)
            if len(batch) < self._batch_size:
                # Following a live log: the commits of the next moment gather into the next
                # batch, one transaction for them all (each room's edit was a transaction of
                # every projection that folds edits), unless someone waits for a position.
                await progress.rest()
