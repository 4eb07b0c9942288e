"""A project's document at a version or a moment, read from the log alone (no table): the nearest
snapshot at or below the version, then the stream's `doc.updated` events up to it
(docs/history.md).

A moment names the last event recorded at or before it. The store has no index by time, so the
version is found by bisection over the stream (one single-event read per step, about 17 for
100,000 events); that assumes `recorded_at` does not go back as versions grow, which holds for
one database clock (a stream's events commit in version order)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc

from crdt import EMPTY_UPDATE, build
from domain.document import plain
from domain.events import DOC_UPDATED
from eventstore import EventStore, RecordedEvent

PAGE = 1000


class ReplayError(Exception):
    """Base of replay's errors."""


class VersionNotFound(ReplayError):
    """The version asked for is beyond the stream's head."""

    def __init__(self, version: int, head: int) -> None:
        super().__init__(f"version {version} is beyond the project's head (version {head})")
        self.version = version
        self.head = head


@dataclass(frozen=True, slots=True)
class State:
    """The document as it stood at `version` (0: before any event), the time of that version's
    event (None at 0), and the event it stands at."""

    version: int
    recorded_at: datetime | None
    doc: Doc[Any]

    def public(self) -> dict[str, Any]:
        """The version, its time (ISO 8601) and every root of the document as JSON."""
        stamp = None if self.recorded_at is None else self.recorded_at.isoformat()
        return {"version": self.version, "recorded_at": stamp, "document": plain(self.doc)}


def moment(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 date and time (without a zone: UTC); ValueError if it is not."""
    when = datetime.fromisoformat(text.strip().upper())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def _event(store: EventStore, stream: str, version: int) -> RecordedEvent:
    found = await store.read_stream(stream, version, version)
    if not found:  # a gap would be a broken log: say so rather than answer something else
        raise ReplayError(f"{stream} has no event at version {version}")
    return found[0]


async def updates(
    store: EventStore, stream: str, after: int, upto: int, page: int = PAGE
) -> list[RecordedEvent]:
    """The stream's events with `after < version <= upto`, read in pages."""
    events: list[RecordedEvent] = []
    start = after + 1
    while start <= upto:
        batch = await store.read_stream(stream, start, upto, limit=page)
        if not batch:
            break
        events += batch
        start = batch[-1].version + 1
    return events


async def state_at(store: EventStore, stream: str, version: int) -> State:
    """The document at `version` (0 <= version <= head); VersionNotFound beyond the head."""
    if version < 0:
        raise ValueError("a version is 0 or more")
    head = await store.stream_version(stream)
    if version > head:
        raise VersionNotFound(version, head)
    if version == 0:
        return State(0, None, build(EMPTY_UPDATE, ()))
    snapshot = await store.load_snapshot(stream, max_version=version)
    base, start = (EMPTY_UPDATE, 0) if snapshot is None else (snapshot.state, snapshot.version)
    tail = await updates(store, stream, start, version)
    # off the event loop, as a room's load is: a long tail takes a while to apply
    doc = await asyncio.to_thread(build, base, [e.data for e in tail if e.type == DOC_UPDATED])
    last = tail[-1] if tail else await _event(store, stream, version)
    return State(version, last.recorded_at, doc)


async def version_at(
    store: EventStore, stream: str, at: datetime, *, strictly: bool = False
) -> int:
    """The version of the stream's last event recorded at or before `at` (before it if
    `strictly`); 0 if there is none. `at` must carry a time zone."""
    low, high = 0, await store.stream_version(stream)
    while low < high:  # invariant: the answer lies in [low, high]
        middle = (low + high + 1) // 2
        when = (await _event(store, stream, middle)).recorded_at
        if when < at or (when == at and not strictly):
            low = middle
        else:
            high = middle - 1
    return low


async def state_when(store: EventStore, stream: str, at: datetime) -> State:
    """The document as it stood at the moment `at` (an aware datetime)."""
    return await state_at(store, stream, await version_at(store, stream, at))
