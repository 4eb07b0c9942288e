"""Membership changes: what each does to an access, and the follower that finds them in the log
(on the memory event store, a real backend), through store failures."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crdt import EMPTY_UPDATE
from domain import events
from eventstore import (
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StoreUnavailableError,
    Subscription,
)
from eventstore.memory import MemoryEventStore
from jacameno.collab.errors import Forbidden, NoSuchProject, Unauthenticated
from jacameno.collab.gatekeeper import Access
from jacameno.collab.membership import MembershipChange, MembershipFollower

PROJECT = str(uuid.uuid4())


def _event(kind: str, **data: str) -> NewEvent:
    return NewEvent(kind, events.encode(data), {"user_id": "owner"})


def test_a_change_concerns_only_accesses_decided_before_it() -> None:
    demoted = MembershipChange(PROJECT, 7, "bob", "viewer")
    assert demoted.revise(Access("bob", "editor", 6)) == Access("bob", "viewer", 7)
    assert demoted.revise(Access("bob", "editor", 7)) is None
    assert demoted.revise(Access("carol", "editor", 6)) is None
    revoked = MembershipChange(PROJECT, 8, "bob", None).revise(Access("bob", "editor", 6))
    assert isinstance(revoked, Forbidden)
    assert revoked.close_code == 4403
    deleted = MembershipChange(PROJECT, 9, None, None).revise(Access("carol", "owner", 8))
    assert isinstance(deleted, NoSuchProject)
    assert deleted.close_code == 4404


def test_a_deleted_user_loses_every_access_whatever_its_version() -> None:
    event = RecordedEvent(
        position=3,
        stream=events.user_stream("bob"),
        version=1,
        type=events.USER_DELETED,
        data=b'{"user_id":"bob"}',
        metadata_json="{}",
        recorded_at=datetime.now(UTC),
    )
    change = MembershipChange.from_event(event)
    assert (change.project_id, change.user_id) == (None, "bob")
    revoked = change.revise(Access("bob", "owner", 99, expires_at=1.0))
    assert isinstance(revoked, Unauthenticated)
    assert revoked.close_code == 4401
    assert change.revise(Access("carol", "owner", 0)) is None


@dataclass
class Flaky:
    """Wraps a store: its reads raise the queued errors first."""

    store: MemoryEventStore
    failures: list[Exception] = field(default_factory=list)
    reads: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        return Subscription(self, after_position, batch_size=batch_size, poll_interval=0.05)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Any]:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        return await self.store.read_all(after_position, limit)


async def _follow(store: Any, *, settled_failures: int = 0) -> tuple[MembershipFollower, list[Any]]:
    changes: list[MembershipChange] = []
    settled: list[int] = []
    failures = [settled_failures]

    async def settle(position: int) -> None:
        if failures[0]:
            failures[0] -= 1
            raise TimeoutError("the read model lags")
        settled.append(position)

    follower = MembershipFollower(
        store, changes.append, 0, settled=settle, interval=0.01, max_backoff=0.05
    )
    follower.start()
    return follower, changes


async def test_the_follower_hands_over_membership_changes_in_log_order() -> None:
    store = MemoryEventStore()
    stream = events.stream_name(PROJECT)
    await store.append(stream, [_event(events.MEMBER_ADDED, user_id="bob", role="editor")])
    follower, changes = await _follow(store)
    await store.append(stream, [NewEvent(events.DOC_UPDATED, EMPTY_UPDATE, {})] * 50)
    await store.append(stream, [_event(events.MEMBER_ROLE_CHANGED, user_id="bob", role="viewer")])
    await store.append(stream, [_event(events.MEMBER_ROLE_CHANGED, user_id="bob", role="boss")])
    await store.append(stream, [_event(events.MEMBER_REMOVED, user_id="bob")])
    result = await store.append(stream, [_event(events.PROJECT_DELETED)])
    await follower.wait_for(result.last_position)
    assert changes == [
        MembershipChange(PROJECT, 52, "bob", "viewer"),
        MembershipChange(PROJECT, 53, "bob", None),  # a role this server does not know
        MembershipChange(PROJECT, 54, "bob", None),
        MembershipChange(PROJECT, 55, None, None),
    ]
    await follower.stop()
    await store.close()


async def test_the_follower_retries_with_backoff_until_the_store_answers() -> None:
    store = Flaky(MemoryEventStore())
    store.failures = [
        StoreUnavailableError("database down"),
        EventStoreError("something else"),
        RuntimeError("a bug"),
    ]
    follower, changes = await _follow(store, settled_failures=2)
    result = await store.append(
        events.stream_name(PROJECT), [_event(events.MEMBER_REMOVED, user_id="bob")]
    )
    await follower.wait_for(result.last_position)
    assert changes == [MembershipChange(PROJECT, 1, "bob", None)]
    assert store.reads >= 6
    await follower.stop()


async def test_the_follower_ends_when_the_store_closes() -> None:
    store = MemoryEventStore()
    follower, _ = await _follow(store)
    await store.close()
    task = follower.task
    assert task is not None
    await asyncio.wait_for(asyncio.shield(task), 5)
    await follower.stop()


@dataclass
class Stubborn(Flaky):
    """Its reads wait until released, whatever cancellations they meet meanwhile (a task that
    is slow to stop); once released, a cancellation ends them."""

    reading: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Any]:
        self.reading.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                if self.release.is_set():
                    raise
        return await self.store.read_all(after_position, limit)


async def test_stopping_the_follower_can_itself_be_cancelled() -> None:
    store = Stubborn(MemoryEventStore())
    follower, _ = await _follow(store)
    task = follower.task
    assert task is not None
    await store.reading.wait()
    stopping = asyncio.create_task(follower.stop())
    await store.cancelled.wait()
    stopping.cancel()
    done, _ = await asyncio.wait({stopping}, timeout=5)
    store.release.set()  # the follower may end now, whatever happened
    task.cancel()
    await asyncio.wait({task, stopping}, timeout=5)
    assert stopping in done
    assert stopping.cancelled()  # not swallowed while the follower lingers
    assert task.cancelled()
