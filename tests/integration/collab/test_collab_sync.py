"""Sync and durability: clients converge, echoes come only after the commit, the log alone
rebuilds the document."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from crdt import document
from domain import document as project_document
from domain import events
from domain.document import ProjectDocument
from harness.waiting import eventually
from jacameno.collab import awareness, loading, protocol
from jacameno.settings import Settings
from jacameno.settings.collab import AFTER_COMMIT, ON_RECEIPT, CollabConfig
from tests.integration.collab.support import Gate, Server, YClient, serving


async def test_two_clients_converge(server: Server) -> None:
    _alice, _bob, _project, a, b = await server.owner_and_member("editor")
    lyrics_a = a.doc.get("lyrics", type=Text)
    lyrics_b = b.doc.get("lyrics", type=Text)
    lyrics_a += "hello "
    b.doc.get("meta", type=Map)["bpm"] = 120
    lyrics_b += "world"
    await eventually(lambda: a.content() == b.content() and "world" in str(lyrics_a))
    assert a.content()["meta"] == {"bpm": 120.0}
    assert "hello" in str(lyrics_a)
    await a.close()
    await b.close()


async def _one_verse(server: Server) -> tuple[YClient, YClient]:
    """A project with one acknowledged edit by its first client, and a second client of it
    that has just connected (and sent nothing)."""
    alice = await server.user("alice")
    project = await server.project(alice)
    a = await server.client(project, alice)
    await a.sync()
    a.doc.get("lyrics", type=Text).insert(0, "verse one")
    await eventually(lambda: len(a.echoes) == 1)
    return a, await server.client(project, alice)


async def test_a_late_joiner_receives_the_document(server: Server) -> None:
    a, late = await _one_verse(server)
    await late.sync()
    assert late.content() == a.content()
    await a.close()
    await late.close()


def _holds(update: bytes) -> ProjectDocument:
    """What `update` alone makes of an empty document."""
    doc: Doc[Any] = Doc()
    doc.apply_update(update)
    return project_document.read(doc)


async def test_a_newcomer_is_sent_the_whole_document_before_it_asks(server: Server) -> None:
    a, late = await _one_verse(server)  # the newcomer sends no sync step 1 of its own
    await eventually(lambda: late.synced)
    assert late.content() == a.content()
    # Its first sync step 1 is answered with what it lacks beyond what it was sent: nothing,
    # though it says it holds nothing; the next ones are answered in full.

    def answers() -> list[protocol.SyncStep2]:
        return [m for m in late.messages if isinstance(m, protocol.SyncStep2)]

    for asked in (2, 3):
        await late.send(protocol.encode_sync_step1(b"\x00"))
        await eventually(lambda n=asked: len(answers()) == n)  # type: ignore[misc]
    early, first, second = (message.update for message in answers())
    assert _holds(early) == _holds(second) == a.content()
    assert _holds(first) == _holds(document.EMPTY_UPDATE)
    # What the room applies after the newcomer joined still reaches it.
    a.doc.get("meta", type=Map)["bpm"] = 90
    await eventually(lambda: late.content() == a.content())
    await a.close()
    await late.close()


async def test_a_document_of_a_large_answer_is_sent_only_when_asked(
    settings: Settings,
) -> None:
    config = CollabConfig(large_sync_bytes=1024)
    async with serving(settings, config) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        a = await server.client(project, alice)
        a.doc.get("lyrics", type=Text).insert(0, "x" * 2000)
        await eventually(lambda: len(a.echoes) == 1)
        late = await server.client(project, alice)
        await eventually(lambda: any(isinstance(m, protocol.SyncStep1) for m in late.messages))
        await late.send(protocol.encode_awareness(awareness.encode([awareness.Entry(9, 1, "{}")])))
        await eventually(lambda: 9 in late.awareness)
        assert not late.synced  # the awareness came after anything the join had sent
        await late.sync()
        assert late.content() == a.content()
        await a.close()
        await late.close()


@pytest.mark.parametrize(
    "config",
    [CollabConfig(unload_delay=0.2, broadcast=m) for m in (AFTER_COMMIT, ON_RECEIPT)],
    ids=[AFTER_COMMIT, ON_RECEIPT],
)
async def test_the_echo_arrives_only_after_the_append_committed(
    server: Server, config: CollabConfig
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    await eventually(lambda: not server.rooms.loaded(project).busy)  # type: ignore[union-attr]
    live = server.rooms.loaded(project)
    assert live is not None
    gate = Gate(server.store)
    live.writer.store = gate
    a.doc.get("lyrics", type=Text).insert(0, "durable")
    await eventually(lambda: gate.calls == 1)
    # Awareness is relayed without touching the log; b's own awareness echo comes back on the
    # same connection after anything the server had already sent it.
    b_state = protocol.encode_awareness(
        b"\x01" + bytes([7]) + b"\x01" + bytes([len(b'{"u":1}')]) + b'{"u":1}'
    )
    await b.send(b_state)
    await eventually(lambda: 7 in b.awareness)
    assert a.echoes == []
    # The other socket has it before the commit only in on-receipt mode.
    assert b.echoes == (a.sent if config.early_broadcast else [])
    assert not await server.events(project, events.DOC_UPDATED)
    gate.opened.set()
    await eventually(lambda: len(a.echoes) == 1 and len(b.echoes) == 1)
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == a.sent == a.echoes
    assert logged[0].metadata["user_id"] == alice.id
    assert logged[0].metadata["client_id"] == a.doc.client_id
    await a.close()
    await b.close()


async def test_the_log_alone_rebuilds_the_converged_document(server: Server) -> None:
    alice, bob = await server.user("alice"), await server.user("bob")
    project = await server.project(alice, (bob, "editor"))
    clients = [await server.client(project, u) for u in (alice, bob, alice)]
    for c in clients:
        await c.sync()

    async def edit(i: int) -> None:
        c = clients[i % 3]
        with c.doc.transaction():
            c.doc.get("lyrics", type=Text).insert(0, f"{i} ")
            c.doc.get("meta", type=Map)[f"k{i % 5}"] = i
        await asyncio.sleep(0)

    await asyncio.gather(*(edit(i) for i in range(60)))
    await eventually(lambda: all(len(c.echoes) == 60 for c in clients))
    assert clients[0].content() == clients[1].content() == clients[2].content()
    logged = await server.events(project, events.DOC_UPDATED)
    rebuilt = document.build(document.EMPTY_UPDATE, [e.data for e in logged])
    assert project_document.read(rebuilt) == clients[0].content()
    loaded = await loading.load(server.store, project)
    assert project_document.read(loaded.doc) == clients[0].content()
    for c in clients:
        await c.close()


async def test_a_reconnecting_client_repeating_known_state_logs_nothing(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    a = await server.client(project, alice)
    await a.sync()
    text = a.doc.get("lyrics", type=Text)
    text.insert(0, "hello brave new world")
    del text[6:12]
    await eventually(lambda: len(a.echoes) == 2)
    await a.close()
    logged = len(await server.events(project, events.DOC_UPDATED))
    # Its sync step 2 repeats the whole delete set: nothing new, nothing logged.
    again = YClient(server, project, alice.token)
    again.doc.apply_update(a.doc.get_update())
    await again.connect()
    await eventually(lambda: any(isinstance(m, protocol.SyncStep1) for m in again.messages))
    await again.flush()
    await again.send(protocol.encode_awareness(awareness.encode([awareness.Entry(9, 1, "{}")])))
    await eventually(lambda: 9 in again.awareness)
    assert len(await server.events(project, events.DOC_UPDATED)) == logged
    # A new deletion still is.
    del again.doc.get("lyrics", type=Text)[0:6]
    await eventually(lambda: len(again.echoes) == 1)
    assert len(await server.events(project, events.DOC_UPDATED)) == logged + 1
    await again.close()
