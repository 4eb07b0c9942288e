"""Catch-up-then-live subscriptions over any store's `read_all`, shared by every backend, and the
one read of the log's new page that the subscriptions woken by one commit share (`SharedReads`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from dbdrivers.shared import Waiters
from eventstore.errors import EventStoreError, StoreClosedError, StoreUnavailableError
from eventstore.model import RecordedEvent

logger = logging.getLogger(__name__)


class _Log(Protocol):
    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]: ...

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool: ...


class SharedReads:
    """A store's `read_all` for its subscriptions, where the pages asked in one turn of the event
    loop are read once each: a commit wakes every subscription that follows the log's head (each
    projection of the node, the project feeds), and each asks for the same page after the same
    position. Without this, each made its own round trip and decoded its own copy of the same
    rows, for every commit. A read begins at the loop's next turn, after every request it
    answers, so nobody gets a page older than its question; a request made once the read has
    begun waits for a read of its own. The events are shared as they are (immutable)."""

    def __init__(self, log: _Log) -> None:
        self._log = log
        self._asked: dict[tuple[int, int], Waiters[list[RecordedEvent]]] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self.reads = 0  # reads made (for tests)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        key = (after_position, limit)
        waiters = self._asked.get(key)
        if waiters is None:
            waiters = self._asked[key] = Waiters()
            asyncio.get_running_loop().call_soon(self._begin, key, waiters)
        # A future of its own, woken in the turn the read ends (`dbdrivers.shared`): a
        # subscription closed meanwhile leaves the read to the others.
        return await waiters.add()

    def _begin(self, key: tuple[int, int], waiters: Waiters[list[RecordedEvent]]) -> None:
        del self._asked[key]  # from now on, a request waits for a read of its own
        self.reads += 1
        task = asyncio.create_task(self._read(key, waiters), name="shared-read")
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _read(self, key: tuple[int, int], waiters: Waiters[list[RecordedEvent]]) -> None:
        try:
            events = await self._log.read_all(*key)
        except BaseException as exc:  # cancelled: the store or the loop is closing
            waiters.fail(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            waiters.tell(events)

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        return await self._log.wait_for_commit(after_position, timeout)


class Subscription:
    """Async iterator over events after a position: catch-up reads in pages, then waits for commit
    signals (with a slow fallback poll, for writers in other processes), never busy-looping.

    `position` is the last position handed out: the checkpoint to resume from. A gap in positions
    is a broken invariant and raises instead of being skipped. Transient store failures are
    retried with backoff; a closed store ends the iteration with StoreClosedError."""

    def __init__(
        self,
        log: _Log,
        after_position: int = 0,
        *,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        max_backoff: float = 2.0,
    ) -> None:
        if after_position < 0:
            raise ValueError("after_position must be >= 0")
        self._log = log
        self.position = after_position
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._buffer: deque[RecordedEvent] = deque()
        self._closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RecordedEvent:
        if not self._buffer:
            self._buffer.extend(await self.next_batch())
        event = self._buffer.popleft()
        self.position = event.position
        return event

    async def next_batch(self) -> list[RecordedEvent]:
        """The next non-empty page of events after those already handed out (waiting if none).
        When used directly, `position` advances to the page's last event."""
        if self._buffer:
            batch = list(self._buffer)
            self._buffer.clear()
            self.position = batch[-1].position
            return batch
        backoff = 0.05
        while True:
            if self._closed:
                raise StopAsyncIteration
            try:
                batch = await self._log.read_all(self.position, self._batch_size)
            except StoreClosedError:
                raise
            except StoreUnavailableError as exc:
                logger.warning(
                    "subscription read failed; retrying",
                    extra={
                        "action": "subscription.retry",
                        "position": self.position,
                        "error": str(exc),
                    },
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if batch:
                if batch[0].position != self.position + 1:
                    raise EventStoreError(
                        f"gap in the log: expected position {self.position + 1}, "
                        f"got {batch[0].position}"
                    )
                self.position = batch[-1].position
                return batch
            await self._log.wait_for_commit(self.position, self._poll_interval)

    def close(self) -> None:
        self._closed = True
