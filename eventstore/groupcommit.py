"""Group commit: one writer task turns concurrent appends into one transaction per batch.

An idle writer commits a lone append at once (no added delay). While a transaction is in flight,
new appends queue up and go together in the next one, bounded by `max_events` per batch. Each
append is decided on its own (`eventstore.planning`), so one conflicting or invalid append fails
alone; only a database failure fails a whole batch.

Pacing (off unless asked for, like Postgres' commit_delay): while events arrive faster than
`Pacing.above` per second, commits start at least `Pacing.interval` apart, so that each carries
more appends. Every commit is a round trip whose cost on both sides barely depends on its size;
under many independent writers (collaboration rooms) pacing cuts round trips severalfold for at
most `interval` of added latency. Writers that wait for each append before the next (a
closed loop) gain nothing from it, which is why it is a choice of the application."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from eventstore.errors import EventStoreError, StoreClosedError, StoreUnavailableError
from eventstore.model import AppendResult
from eventstore.planning import AppendRequest, BatchAnswer
from eventstore.stats import StoreStats

logger = logging.getLogger(__name__)

CommitBatch = Callable[[list[AppendRequest]], Awaitable[list[BatchAnswer]]]


@dataclass(slots=True)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class Pacing:
    interval: float = 0.004  # seconds between the starts of two commits, at least
    above: float = 1000.0  # events per second from which commits are paced
    window: float = 0.1  # seconds over which the arrival rate is measured

    def __post_init__(self) -> None:
        if self.interval < 0 or self.above < 0 or self.window <= 0:
            raise ValueError("pacing: interval and above must be >= 0, window > 0")


class GroupCommitter:
    """Queues appends (at most `max_pending` waiting; further appenders wait for room) and commits
    them in batches of at most `max_events` events through `commit_batch`."""

    def __init__(
        self,
        commit_batch: CommitBatch,
        *,
        max_events: int = 2000,
        max_pending: int = 10_000,
        pacing: Pacing | None = None,
    ) -> None:
        self._commit_batch = commit_batch
        self._max_events = max_events
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_pending)
        self._carry: deque[_Pending] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._stopping = False
        self.batches = 0
        self.paced = 0  # commits that waited for their pace
        self._appends = 0  # answered with success
        self._events = 0  # in those appends
        self._commits = 0  # batches that wrote at least one of them
        self._pacing = pacing
        self._arrivals = 0
        self._window_start = 0.0
        self._rate = 0.0  # events per second over the last full window
        self._last_start = 0.0
        self._inflight: list[_Pending] = []

    async def submit(self, request: AppendRequest) -> AppendResult:
        if self._closing:
            raise StoreClosedError("the event store is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="eventstore-writer")
        pending = _Pending(request)
        # Events, not appends: writers that batch more when commits are paced must not make
        # the rate look lower (which would switch pacing off and on).
        self._arrivals += len(request.events)
        await self._queue.put(pending)
        return await pending.future

    async def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer. After `timeout` seconds (a database that
        no longer answers), stop anyway: the appends not yet answered fail with
        StoreClosedError, the one under way saying that its outcome is unknown."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._queue.put(None)
                await asyncio.shield(task)
        except TimeoutError:
            inflight = self._inflight  # the writer forgets it when cancelled
            task.cancel()
            await asyncio.wait({task})  # unlike suppressing CancelledError, keeps our own
            if not task.cancelled():
                task.result()  # it ended before the cancellation landed: its error, if any
            logger.warning(
                "event store closed with appends unanswered",
                extra={
                    "action": "append.close_abandoned",
                    "under_way": len(inflight),
                    "queued": len(self._carry) + self._queue.qsize(),
                },
            )
            unknown = StoreClosedError("the store closed before this append's outcome was known")
            for pending in inflight:
                _settle_error(pending, unknown)
            closed = StoreClosedError("the event store is closed")
            while self._carry:
                _settle_error(self._carry.popleft(), closed)
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    _settle_error(item, closed)

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._carry and (not batch or size < self._max_events):
            pending = self._carry.popleft()
            batch.append(pending)
            size += len(pending.request.events)
        while (
            not self._stopping
            and not self._queue.empty()
            and (not batch or size < self._max_events)
        ):
            item = self._queue.get_nowait()
            if item is None:
                self._stopping = True
                break
            batch.append(item)
            size += len(item.request.events)
        return batch

    async def _run(self) -> None:
        while True:
            if not self._carry:
                if self._stopping:
                    return
                first = await self._queue.get()
                if first is None:
                    return
                self._carry.append(first)
            if self._pacing is not None:
                await self._pace(self._pacing)
            await self._commit(self._take_batch())

    async def _pace(self, pacing: Pacing) -> None:
        """Wait, if events arrive fast, until `interval` after the last commit started."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        elapsed = now - self._window_start
        if elapsed >= pacing.window:
            self._rate = self._arrivals / elapsed
            self._arrivals = 0
            self._window_start = now
        delay = self._last_start + pacing.interval - now
        if delay > 0 and self._rate > pacing.above:
            self.paced += 1
            await asyncio.sleep(delay)
            now = loop.time()
        self._last_start = now

    async def _commit(self, batch: list[_Pending]) -> None:
        requests = [p.request for p in batch]
        self._inflight = batch
        try:
            answers = await self._commit_batch(requests)
        except EventStoreError as exc:
            for pending in batch:
                _settle_error(pending, exc)
            return
        except Exception as exc:  # a bug in a backend must not kill the writer silently
            logger.exception("batch commit failed", extra={"action": "append.batch_failed"})
            for pending in batch:
                _settle_error(pending, StoreUnavailableError(f"append failed: {exc!r}"))
            return
        finally:
            self._inflight = []
        appends = self._appends
        for pending, answer in zip(batch, answers, strict=True):
            if answer is None:
                self._carry.append(pending)
            elif isinstance(answer, EventStoreError):
                _settle_error(pending, answer)
            else:
                self._appends += 1
                self._events += len(pending.request.events)
                if not pending.future.done():  # its appender may have been cancelled
                    pending.future.set_result(answer)
        self.batches += 1
        if self._appends > appends:
            self._commits += 1

    def stats(self) -> StoreStats:
        """What this writer has committed so far (`StoreStats`)."""
        return StoreStats(self._appends, self._events, self._commits, self.paced)


def _settle_error(pending: _Pending, exc: EventStoreError) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)
