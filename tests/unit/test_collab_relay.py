"""The messages nodes exchange, and the order in which a room applies other nodes' appends:
the next version is applied as it comes, a gap is read from the log, what the room has is
ignored (jacameno.collab.relay). A room on the memory log; no network."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pycrdt import Doc, Text, TransactionEvent

from domain import events
from eventstore import EventStore, NewEvent
from eventstore.memory import MemoryEventStore
from harness.waiting import eventually
from jacameno.collab import loading
from jacameno.collab.errors import MalformedMessage
from jacameno.collab.relay import Message, decode, encode_awareness, encode_committed
from jacameno.collab.room import Room
from jacameno.collab.sessions import SessionLog
from jacameno.collab.writer import Committed
from jacameno.settings.collab import CollabConfig


def test_messages_round_trip() -> None:
    committed = Committed(7, 9, [b"\x01\x02", b""])
    assert decode(encode_committed("node-a", committed)) == Message("node-a", committed)
    assert decode(encode_awareness("node-b", b"\x01\x05")) == Message("node-b", b"\x01\x05")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x07\x00", encode_committed("n", Committed(3, 2, [])), b"\x00\x01n\x01\x01\x02"],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


class CountingReads:
    """The memory log, counting the room's reads of it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def read_stream(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return await self.store.read_stream(*args, **kwargs)


def _update(text: str, client_id: int) -> bytes:
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.get("lyrics", type=Text).insert(0, text)
    return doc.get_update()


async def _settled(room: Room) -> None:
    """The room's writer has finished."""
    await eventually(lambda: not room.busy, 5)


def _text(room: Room) -> list[str]:
    return sorted(str(room.doc.get("lyrics", type=Text)))


@pytest.fixture
async def setup() -> tuple[Room, CountingReads, list[bytes]]:
    project = str(uuid.uuid4())
    memory = MemoryEventStore()
    await memory.append(
        events.stream_name(project), [NewEvent(events.DOC_UPDATED, _update("a", 1))]
    )
    store = CountingReads(memory)
    loaded = await loading.load(memory, project)
    room = Room(
        project,
        store,
        loaded,
        CollabConfig(),
        "here",
        lambda r: None,
        lambda r: None,
        SessionLog(memory, "here", 60),
    )
    changes: list[bytes] = []  # one per transaction on the document

    def changed(event: TransactionEvent) -> None:
        changes.append(event.update)

    room.doc.observe(changed)
    return room, store, changes


async def _log(store: CountingReads, room: Room, *texts: tuple[str, int]) -> list[bytes]:
    updates = [_update(text, client) for text, client in texts]
    await store.store.append(room.stream, [NewEvent(events.DOC_UPDATED, u) for u in updates])
    return updates


async def test_the_next_version_is_applied_without_reading_the_log(
    setup: tuple[Room, CountingReads, list[bytes]],
) -> None:
    room, store, changes = setup
    (update,) = await _log(store, room, ("b", 2))
    room.receive_committed(Committed(2, 2, [update]))
    await _settled(room)
    assert (room.version, store.reads) == (2, 0)
    assert len(changes) == 1
    assert _text(room) == ["a", "b"]


async def test_what_the_room_has_is_ignored(setup: tuple[Room, CountingReads, list[bytes]]) -> None:
    room, store, changes = setup
    room.receive_committed(Committed(1, 1, [_update("never applied", 3)]))
    await _settled(room)
    assert (room.version, store.reads, changes) == (1, 0, [])


async def test_a_gap_is_read_from_the_log(setup: tuple[Room, CountingReads, list[bytes]]) -> None:
    room, store, changes = setup
    missed, latest = await _log(store, room, ("b", 2), ("c", 3))
    room.receive_committed(Committed(3, 3, [latest]))
    room.receive_committed(Committed(2, 2, [missed]))  # arrives late: already read
    await _settled(room)
    assert (room.version, store.reads) == (3, 1)
    assert len(changes) == 2
    assert _text(room) == ["a", "b", "c"]


async def test_following_the_log_reads_only_the_tail(
    setup: tuple[Room, CountingReads, list[bytes]],
) -> None:
    room, store, changes = setup
    room.follow_log()
    await _settled(room)
    assert (room.version, store.reads, changes) == (1, 1, [])
    await _log(store, room, ("b", 2))
    room.follow_log()
    await _settled(room)
    assert (room.version, store.reads, len(changes)) == (2, 2, 1)
