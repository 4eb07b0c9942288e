"""Subscriptions: catch-up then live, resumable from a checkpoint, woken by commits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from eventstore import EventStore, RecordedEvent
from tests.conformance.eventstore_support import Backend, Collector, events


@contextlib.asynccontextmanager
async def _opened(backend: Backend, poll_interval: float) -> AsyncIterator[EventStore]:
    store = await backend.open(poll_interval=poll_interval)
    try:
        yield store
    finally:
        await store.close()


class SubscriptionTests:
    """Needs `store` (an open, empty store) and `backend` (to open stores with other options)."""

    async def test_a_subscription_catches_up_then_follows_live_commits(
        self, store: EventStore
    ) -> None:
        await store.append("a", events(3))
        collector = Collector(store, batch_size=2)
        try:
            await collector.wait_until(3, timeout=10)
            await store.append("b", events(2))
            await store.append("a", events(1))
            await collector.wait_until(6, timeout=10)
        finally:
            await collector.stop()
        assert [e.position for e in collector.events] == [1, 2, 3, 4, 5, 6]
        assert [(e.stream, e.version) for e in collector.events][3:] == [
            ("b", 1),
            ("b", 2),
            ("a", 4),
        ]

    async def test_a_subscription_resumed_from_its_checkpoint_loses_and_repeats_nothing(
        self, store: EventStore
    ) -> None:
        await store.append("s", events(10))
        seen: list[RecordedEvent] = []
        subscription = store.subscribe(batch_size=3)
        async for recorded in subscription:
            seen.append(recorded)
            if recorded.position == 4:
                break
        checkpoint = subscription.position
        assert checkpoint == 4
        await store.append("s", events(5, prefix="late"))
        resumed = store.subscribe(checkpoint, batch_size=3)
        async for recorded in resumed:
            seen.append(recorded)
            if recorded.position == 15:
                break
        assert [e.position for e in seen] == list(range(1, 16))
        assert [e.version for e in seen] == list(range(1, 16))

    async def test_a_closed_subscription_resumes_where_it_stopped(self, store: EventStore) -> None:
        await store.append("s", events(6))
        subscription = store.subscribe(batch_size=4)
        first = [await anext(subscription) for _ in range(5)]
        subscription.close()
        assert subscription.position == 5
        resumed = store.subscribe(subscription.position)
        rest = await resumed.next_batch()
        assert [e.position for e in first + rest] == [1, 2, 3, 4, 5, 6]

    async def test_a_subscription_from_the_middle_starts_after_that_position(
        self, store: EventStore
    ) -> None:
        await store.append("a", events(4))
        await store.append("b", events(4))
        subscription = store.subscribe(5)
        batch = await asyncio.wait_for(subscription.next_batch(), timeout=10)
        assert [e.position for e in batch] == [6, 7, 8]
        assert [(e.stream, e.version) for e in batch] == [("b", 2), ("b", 3), ("b", 4)]

    async def test_a_subscription_at_the_head_waits_for_the_next_commit(
        self, store: EventStore
    ) -> None:
        await store.append("s", events(3))
        subscription = store.subscribe(3)
        waiting = asyncio.create_task(subscription.next_batch())
        done, _ = await asyncio.wait({waiting}, timeout=0.05)
        assert not done
        await store.append("s", events(1))
        batch = await asyncio.wait_for(waiting, timeout=10)
        assert [e.position for e in batch] == [4]

    async def test_next_batch_hands_out_pages_in_order(self, store: EventStore) -> None:
        await store.append("s", events(5))
        subscription = store.subscribe(batch_size=2)
        pages = [[e.position for e in await subscription.next_batch()] for _ in range(3)]
        assert pages == [[1, 2], [3, 4], [5]]
        assert subscription.position == 5
        waiting = asyncio.create_task(subscription.next_batch())
        await store.append("s", events(2))
        assert [e.position for e in await asyncio.wait_for(waiting, timeout=10)] == [6, 7]
        assert subscription.position == 7

    async def test_next_batch_after_iteration_hands_out_the_rest_of_the_page(
        self, store: EventStore
    ) -> None:
        await store.append("s", events(5))
        subscription = store.subscribe(batch_size=4)
        assert (await anext(subscription)).position == 1
        assert [e.position for e in await subscription.next_batch()] == [2, 3, 4]
        assert [e.position for e in await subscription.next_batch()] == [5]

    async def test_a_waiting_subscriber_is_woken_by_a_commit_not_by_polling(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with _opened(backend, poll_interval=60.0) as store:
            await store.append("s", events(1))
            parked = asyncio.Event()
            wait_for_commit = store.wait_for_commit

            async def noting_wait(after_position: int, timeout: float) -> bool:
                parked.set()
                return await wait_for_commit(after_position, timeout)

            monkeypatch.setattr(store, "wait_for_commit", noting_wait)
            subscription = store.subscribe(1)
            waiting = asyncio.create_task(anext(subscription))
            await asyncio.wait_for(parked.wait(), timeout=10)
            await store.append("s", events(1))
            recorded = await asyncio.wait_for(waiting, timeout=5)
            assert recorded.position == 2

    async def test_wait_for_commit_is_woken_by_a_commit_and_times_out_without_one(
        self, backend: Backend
    ) -> None:
        async with _opened(backend, poll_interval=60.0) as store:
            assert await store.wait_for_commit(0, timeout=0.01) is False
            waiting = asyncio.create_task(store.wait_for_commit(0, timeout=30))
            await store.append("s", events(1))
            assert await asyncio.wait_for(waiting, timeout=5) is True
            assert await store.wait_for_commit(0, timeout=30) is True
