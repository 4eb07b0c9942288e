"""The subscriptions woken by one commit share one read of the new page (SharedReads), and none
of them gets a page older than its question."""

from __future__ import annotations

import asyncio

import pytest

from eventstore import NewEvent, RecordedEvent
from eventstore.errors import StoreUnavailableError
from eventstore.memory import MemoryEventStore
from eventstore.subscription import SharedReads, Subscription
from harness.turns import Turns
from harness.waiting import eventually


async def test_subscriptions_at_the_head_share_one_read_per_commit() -> None:
    store = MemoryEventStore()
    await store.append("s", [NewEvent("a")])
    shared = SharedReads(store)
    subscriptions = [Subscription(shared, 1) for _ in range(7)]
    waiting = [asyncio.create_task(s.next_batch()) for s in subscriptions]
    # Every one reads the empty page after 1 (one read), then waits for a commit.
    await eventually(lambda: shared.reads == 1 and not any(t.done() for t in waiting))
    for _ in range(3):
        await asyncio.sleep(0)  # turns of the loop, not time: each is now waiting
    reads = shared.reads
    await store.append("s", [NewEvent("b"), NewEvent("c")])
    batches = await asyncio.gather(*waiting)
    assert [[e.type for e in b] for b in batches] == [["b", "c"]] * 7
    assert shared.reads == reads + 1
    # Different pages are read each on its own, in the same turn.
    behind, ahead = Subscription(shared, 0), Subscription(shared, 2)
    pages = await asyncio.gather(behind.next_batch(), ahead.next_batch())
    assert [[e.position for e in p] for p in pages] == [[1, 2, 3], [3]]


async def test_a_request_made_once_a_read_began_gets_a_read_of_its_own() -> None:
    store = MemoryEventStore()
    began, release = asyncio.Event(), asyncio.Event()

    class Slow:
        async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
            events = await store.read_all(after_position, limit)  # what the log holds now
            began.set()
            await release.wait()
            return events

        async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
            return await store.wait_for_commit(after_position, timeout)

    shared = SharedReads(Slow())
    first = asyncio.create_task(shared.read_all(0))
    await began.wait()
    await store.append("s", [NewEvent("late")])  # committed after the first read began
    second = asyncio.create_task(shared.read_all(0))
    release.set()
    assert await first == []
    assert [e.type for e in await second] == ["late"]
    assert shared.reads == 2


async def test_a_failed_read_fails_each_request_that_shared_it() -> None:
    class Down:
        async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
            raise StoreUnavailableError("down")

        async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
            return False

    shared = SharedReads(Down())
    results = await asyncio.gather(shared.read_all(0), shared.read_all(0), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailableError) for r in results)
    assert shared.reads == 1
    with pytest.raises(StoreUnavailableError):
        await shared.read_all(0)


class _Gated:
    """A log whose reads wait for `release`, and tell `began` when one does."""

    def __init__(self, store: MemoryEventStore) -> None:
        self.store = store
        self.began, self.release = asyncio.Event(), asyncio.Event()

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        self.began.set()
        await self.release.wait()
        return await self.store.read_all(after_position, limit)

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        return await self.store.wait_for_commit(after_position, timeout)


async def test_a_request_that_gives_up_leaves_the_read_to_the_others() -> None:
    store = MemoryEventStore()
    await store.append("s", [NewEvent("a")])
    log = _Gated(store)
    shared = SharedReads(log)
    leaving = asyncio.create_task(shared.read_all(0))
    staying = asyncio.create_task(shared.read_all(0))
    async with asyncio.timeout(5):
        await log.began.wait()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    log.release.set()
    assert [e.type for e in await staying] == ["a"]
    assert shared.reads == 1


async def test_a_request_wakes_in_the_turn_its_read_ends() -> None:
    store = MemoryEventStore()
    await store.append("s", [NewEvent("a")])
    turns = Turns()

    class Marking:
        async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
            events = await store.read_all(after_position, limit)
            turns.mark()
            return events

        async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
            return await store.wait_for_commit(after_position, timeout)

    shared = SharedReads(Marking())

    async def reader() -> None:
        await shared.read_all(0)
        turns.order.append("woken")

    async with asyncio.timeout(5):
        await asyncio.create_task(reader())
    await turns.settled()
    # Through `asyncio.shield` it would be woken only in the turn after.
    assert turns.order == [Turns.NEXT, "woken", Turns.AFTER]
