"""The session log on the memory event store: joins and leaves pair across failed appends,
client-chosen text is made safe, and the rate per user and project is a refilling bucket."""

from __future__ import annotations

import json
from typing import Any

from domain import events
from eventstore import AppendResult, NewEvent, StoreUnavailableError
from eventstore.memory import MemoryEventStore
from jacameno.collab.gatekeeper import Access
from jacameno.collab.peer import Peer
from jacameno.collab.sessions import SessionLog, safe_label


class FailingFirst:
    """A store whose first `failures` appends fail as if the database were down."""

    def __init__(self, store: MemoryEventStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    async def append(self, stream: str, batch: list[NewEvent]) -> AppendResult:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("down")
        return await self.store.append(stream, batch)


def _peer(user: str, peer_id: str) -> Peer:
    return Peer(None, None, Access(user, "viewer", 0), 0.0, peer_id)  # type: ignore[arg-type]


def test_client_chosen_text_is_kept_only_when_plain() -> None:
    assert safe_label("k3j9x2") == "k3j9x2"
    for text in ("a\0b", "", "é", "x" * 65, "a/b"):
        label = safe_label(text)
        assert label.startswith("sha256:")
        assert len(label) == 39


async def test_a_join_that_failed_gets_no_leave_and_the_next_pair_is_logged() -> None:
    memory = MemoryEventStore()
    log = SessionLog(FailingFirst(memory, 1), "node", 60)  # type: ignore[arg-type]
    first, second = _peer("u", "c1"), _peer("u", "c2")
    log.joined("p", first, "y-websocket")
    await log.drain(5.0)
    log.joined("p", second, "y-websocket")
    log.left("p", first, 1000)  # its join failed: no leave
    log.left("p", second, 1000)
    await log.drain(5.0)
    logged = await memory.read_stream(events.stream_name("p"))
    assert [(e.type, e.metadata["connection_id"]) for e in logged] == [
        (events.SESSION_JOINED, "c2"),
        (events.SESSION_LEFT, "c2"),
    ]
    assert log.open == 0


async def test_sessions_beyond_the_rate_are_neither_joined_nor_left() -> None:
    memory = MemoryEventStore()
    now = [0.0]
    reported: list[Any] = []
    log = SessionLog(
        memory, "node", 3, on_logged=lambda p, r: reported.append(r), clock=lambda: now[0]
    )
    for n in range(5):
        peer = _peer("u", f"c{n}")
        log.joined("p", peer, "hocuspocus")
        log.left("p", peer, 1000)
    now[0] += 20.0  # a third of a minute: one more session
    for n in range(5, 7):
        peer = _peer("u", f"c{n}")
        log.joined("p", peer, "hocuspocus")
        log.left("p", peer, 1000)
    log.joined("p", _peer("other user", "o1"), "hocuspocus")
    await log.drain(5.0)
    logged = await memory.read_stream(events.stream_name("p"))
    joined = [json.loads(e.data)["connection_id"] for e in logged if e.type == "session.joined"]
    left = [json.loads(e.data)["connection_id"] for e in logged if e.type == "session.left"]
    assert joined == ["c0", "c1", "c2", "c5", "o1"]
    assert left == ["c0", "c1", "c2", "c5"]
    assert log.skipped == 3
    assert reported[-1].last_version == len(logged)
