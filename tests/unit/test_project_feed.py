"""The SSE feed's hub (jacameno.jobs.feed) over the in-memory log: a listener gets its project's
job and asset events only, in order, resumes after a position without a gap or a repeat, is ended
when it falls too far behind, and ends when the log's reader does."""

from __future__ import annotations

import asyncio

import pytest

from domain.events import jobs as events
from domain.events import stream_name
from eventstore import NewEvent
from eventstore.memory import MemoryEventStore
from harness.waiting import wait_until
from jacameno.jobs import feed as feeds
from jacameno.jobs.feed import Overrun, ProjectFeed


def _request(job: str) -> NewEvent:
    return events.job_requested(events.JobRequest(job, "analysis", "a1"), user_id="u1")


async def _take(iterator: object, count: int) -> list[str]:
    taken = []
    for _ in range(count):
        event = await asyncio.wait_for(anext(iterator), 5)  # type: ignore[call-overload]
        taken.append(events.read_job_event(event.data)["job_id"])
    return taken


async def test_a_listener_gets_its_projects_job_events_in_order() -> None:
    store = MemoryEventStore()
    feed = ProjectFeed(store)
    async with feed.listening("p1") as mine:
        await store.append(stream_name("p2"), [_request("theirs")])
        await store.append(stream_name("p1"), [NewEvent("doc.updated", b"\x00\x00")])
        await store.append(stream_name("p1"), [_request("j1"), _request("j2")])
        assert await _take(mine, 2) == ["j1", "j2"]
    await feed.close()


async def test_a_listener_resumes_after_a_position() -> None:
    store = MemoryEventStore()
    await store.append(stream_name("p1"), [_request("old")])
    seen = await store.append(stream_name("p1"), [_request("seen")])
    await store.append(stream_name("p1"), [_request("missed")])
    feed = ProjectFeed(store)
    async with feed.listening("p1", after=seen.last_position) as resumed:
        await store.append(stream_name("p1"), [_request("new")])
        assert await _take(resumed, 2) == ["missed", "new"]
    await feed.close()


async def test_a_listener_too_far_behind_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "QUEUE", 3)
    store = MemoryEventStore()
    feed = ProjectFeed(store)
    async with feed.listening("p1") as slow:
        for n in range(5):
            await store.append(stream_name("p1"), [_request(f"j{n}")])
        await wait_until(lambda: not feed._listeners, "the reader ended the slow listener")
        with pytest.raises(Overrun):
            await _take(slow, 5)
    await feed.close()


async def test_listeners_end_when_the_feed_closes() -> None:
    store = MemoryEventStore()
    feed = ProjectFeed(store)
    async with feed.listening("p1") as listening:
        waiting = asyncio.ensure_future(anext(listening))
        await feed.close()
        with pytest.raises(Overrun):
            await asyncio.wait_for(waiting, 5)
