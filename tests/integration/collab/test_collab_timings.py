"""The durable acknowledgement's timing, the room's appends and the joins' syncs are metrics
(`jacameno_collab_ack_seconds`, `jacameno_collab_append_seconds`, `jacameno_collab_join_seconds`):
an update's acknowledgement is timed from its frame's arrival, so it holds the commit it waited
for; a no-op update is not counted; a newcomer's sync is timed from its upgrade request, so it
holds the commit its document waited for. Served both with our WebSocket protocol (which stamps
the bytes' arrival) and with uvicorn's own (timed from the app's read)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pycrdt import Text

from harness.waiting import eventually
from jacameno.collab import protocol
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Gate, Server, YClient, serving

HELD = 0.15  # seconds the commit is held


@pytest.fixture(params=["frames", "asgi"])
async def served(
    request: pytest.FixtureRequest, settings: Settings, config: CollabConfig
) -> AsyncIterator[Server]:
    async with serving(settings, config, asgi_sends=request.param == "asgi") as running:
        yield running


async def test_an_acknowledgement_is_timed_from_arrival_through_its_commit(
    served: Server,
) -> None:
    _alice, _bob, project, a, b = await served.owner_and_member("editor")
    # Joining sent only empty sync answers: acknowledged without a commit, not counted.
    assert (await served.histogram("ack"))[0] == 0
    live = served.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: not live.busy)
    acks, acked = await served.histogram("ack")
    appends, appended = await served.histogram("append")
    gate = Gate(served.store)
    live.writer.store = gate
    sent = time.perf_counter()
    a.doc.get("lyrics", type=Text).insert(0, "timed")
    await eventually(lambda: gate.calls == 1)
    await asyncio.sleep(HELD)
    gate.opened.set()
    await eventually(lambda: a.echoes == a.sent)
    seen = time.perf_counter() - sent  # what the client saw, which holds the server's time

    count, total = await served.histogram("ack")
    assert count == acks + 1
    append_count, append_total = await served.histogram("append")
    assert append_count == appends + 1
    commit = append_total - appended
    assert HELD <= commit <= total - acked <= seen

    # The same edit again changes nothing: acknowledged at once, neither appended nor counted.
    await a.send(protocol.encode_update(a.sent[-1]))
    answers = sum(isinstance(m, protocol.SyncStep2) for m in a.messages)
    await a.send(protocol.encode_sync_step1(a.doc.get_state()))
    # answered: the server has read past the repeated update
    await eventually(lambda: sum(isinstance(m, protocol.SyncStep2) for m in a.messages) > answers)
    assert a.echoes == a.sent
    assert (await served.histogram("ack"))[0] == count
    assert (await served.histogram("append"))[0] == append_count
    await a.close()
    await b.close()


async def test_a_join_is_timed_from_its_upgrade_request_to_its_document(served: Server) -> None:
    alice, _bob, project, a, b = await served.owner_and_member("editor")
    joins, joined = await served.histogram("join")
    assert joins == 2  # a and b, each once (b's later sync step 1 answers are not joins)
    live = served.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: not live.busy)
    gate = Gate(served.store)
    live.writer.store = gate
    a.doc.get("lyrics", type=Text).insert(0, "pending")
    await eventually(lambda: gate.calls == 1)
    # A newcomer's document waits for the update in flight to commit.
    started = time.perf_counter()
    c = YClient(served, project, alice.token)
    await c.connect()
    await asyncio.sleep(HELD)
    assert not c.synced
    gate.opened.set()
    await eventually(lambda: c.synced)
    seen = time.perf_counter() - started
    count, total = await served.histogram("join")
    assert count == joins + 1
    assert HELD <= total - joined <= seen
    assert "pending" in c.content()["lyrics"]
    for client in (a, b, c):
        await client.close()
