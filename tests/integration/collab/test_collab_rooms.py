"""Rooms: awareness, one shared load, snapshots, unloading, a log that fails, and a shutdown
that a hung log cannot hold up."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pycrdt import Map, Text

from crdt import document
from crdt.encoding import write_var_uint
from domain import document as project_document
from domain import events
from eventstore import StoreUnavailableError
from harness.accounts import User
from harness.waiting import eventually
from jacameno.collab import awareness, loading, protocol
from jacameno.collab.room import Room
from jacameno.settings import Settings
from jacameno.settings.collab import AFTER_COMMIT, ON_RECEIPT, CollabConfig
from tests.integration.collab.support import Gate, Server, YClient, serving


def _awareness(client: int, clock: int, state: object) -> bytes:
    return protocol.encode_awareness(
        awareness.encode([awareness.Entry(client, clock, json.dumps(state))])
    )


async def test_awareness_is_relayed_and_cleared_when_a_socket_drops(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("viewer")
    await a.send(_awareness(11, 1, {"user": "alice", "cursor": 3}))
    await b.send(_awareness(22, 1, {"user": "bob"}))
    await eventually(lambda: set(a.awareness) == set(b.awareness) == {11, 22})
    # A socket that joins later gets the known states at once.
    c = await server.client(project, alice)
    await eventually(lambda: set(c.awareness) == {11, 22})
    await b.close()
    await eventually(lambda: set(a.awareness) == set(c.awareness) == {11})
    assert await server.events(project, events.DOC_UPDATED) == []
    assert all("awareness" not in e.type for e in await server.events(project))
    await a.close()
    await c.close()


async def test_query_awareness_is_answered(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    a = await server.client(project, alice)
    await a.send(_awareness(5, 1, {"x": 1}))
    await eventually(lambda: 5 in a.awareness)
    a.awareness.clear()
    await a.send(bytes([protocol.MESSAGE_QUERY_AWARENESS]))
    await eventually(lambda: 5 in a.awareness)
    await a.close()


async def test_malformed_awareness_closes_4400(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    a = await server.client(project, alice)
    bad_json = write_var_uint(1) + write_var_uint(5) + write_var_uint(1) + b"\x03{x}"
    await a.send(protocol.encode_awareness(bad_json))
    assert await a.wait_closed() == 4400


async def test_concurrent_joiners_share_one_load(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    loads = server.rooms.loads
    clients = await asyncio.gather(*(server.client(project, alice) for _ in range(8)))
    await asyncio.gather(*(c.sync() for c in clients))
    assert server.rooms.loads == loads + 1
    for c in clients:
        await c.close()


@pytest.fixture
def config() -> CollabConfig:
    return CollabConfig(snapshot_every_updates=5, snapshot_jitter=0.0, unload_delay=0.05)


async def test_a_room_reloads_from_snapshot_and_tail_to_the_live_document(
    server: Server,
) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    a = await server.client(project, alice)
    await a.sync()
    for i in range(13):
        with a.doc.transaction():
            a.doc.get("lyrics", type=Text).insert(0, f"line {i}\n")
            a.doc.get("meta", type=Map)["bpm"] = 100 + i
        await eventually(lambda n=i: len(a.echoes) == n + 1)  # type: ignore[misc]
    live = server.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: live.snapshots >= 2)
    snapshot = await server.store.load_snapshot(events.stream_name(project))
    assert snapshot is not None
    loaded = await loading.load(server.store, project)
    assert loaded.tail  # the reload really used snapshot + tail
    assert project_document.read(loaded.doc) == a.content() == project_document.read(live.doc)
    await a.close()
    # Unloaded after the idle delay (with a last snapshot), then loaded again on demand.
    await eventually(lambda: project not in server.rooms)
    final = await server.store.load_snapshot(events.stream_name(project))
    assert final is not None
    assert final.version > snapshot.version
    again = await server.client(project, alice)
    await again.sync()
    assert again.content() == a.content()
    await again.close()


async def _failing_room(
    server: Server,
    *,
    fail_with: BaseException | None = None,
    fail_after: BaseException | None = None,
) -> tuple[User, str, YClient, YClient, Room]:
    """An owner and an editor in a room with one committed edit, whose store from now on fails
    as Gate's `fail_with` or `fail_after` says."""
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    a.doc.get("lyrics", type=Text).insert(0, "kept ")
    await eventually(lambda: len(b.echoes) == 1)
    live = server.rooms.loaded(project)
    assert live is not None
    gate = Gate(server.store, fail_with=fail_with, fail_after=fail_after)
    live.writer.store = gate
    gate.opened.set()
    return alice, project, a, b, live


async def test_an_unavailable_log_closes_1013_and_the_room_reloads(server: Server) -> None:
    failure = StoreUnavailableError("database down")
    alice, project, a, b, _live = await _failing_room(server, fail_with=failure)
    a.doc.get("lyrics", type=Text).insert(0, "lost? ")
    assert await a.wait_closed() == 1013
    assert await b.wait_closed() == 1013
    assert "lost" not in b.content()["lyrics"]  # never acknowledged, never shown
    # Reconnecting loads the room from the log; the client's step 2 resends what is missing.
    retry = YClient(server, project, alice.token)
    retry.doc.apply_update(a.doc.get_update())
    await retry.connect()
    await retry.sync()
    await eventually(lambda: len(retry.echoes) >= 1)
    logged = await server.events(project, events.DOC_UPDATED)
    rebuilt = document.build(document.EMPTY_UPDATE, [e.data for e in logged])
    assert project_document.read(rebuilt) == a.content()
    await retry.close()


@pytest.mark.parametrize(
    "config",
    [CollabConfig(unload_delay=0.2, broadcast=m) for m in (AFTER_COMMIT, ON_RECEIPT)],
    ids=[AFTER_COMMIT, ON_RECEIPT],
)
async def test_a_crashed_writer_closes_1011_and_the_room_reloads_from_the_log(
    server: Server, config: CollabConfig, caplog: pytest.LogCaptureFixture
) -> None:
    # The batch commits, then the writer meets an exception nobody expected.
    failure = RuntimeError("unexpected")
    alice, project, a, b, live = await _failing_room(server, fail_after=failure)
    a.doc.get("lyrics", type=Text).insert(0, "logged ")
    assert await a.wait_closed() == 1011
    assert await b.wait_closed() == 1011
    # Never acknowledged; shown to the other socket before the commit only in on-receipt mode.
    assert ("logged" in b.content()["lyrics"]) == config.early_broadcast
    assert live.failed
    assert server.rooms.loaded(project) is None
    crashed = [r for r in caplog.records if getattr(r, "action", "") == "collab.writer_crashed"]
    assert [(r.__dict__["project"], r.exc_info is not None) for r in crashed] == [(project, True)]
    # The next joiner loads the room from the log, where the batch is.
    again = await server.client(project, alice)
    await again.sync()
    assert again.content()["lyrics"] == "logged kept "
    assert server.rooms.loaded(project) is not live
    await again.close()


async def test_a_room_that_fails_to_close_at_shutdown_is_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(settings) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        await client.sync()
        live = server.rooms.loaded(project)
        assert live is not None

        async def fails() -> None:
            raise RuntimeError("the last snapshot failed")

        live.close = fails  # type: ignore[method-assign]
    failed = [r for r in caplog.records if getattr(r, "action", "") == "collab.close_failed"]
    assert [(r.levelname, str(r.exc_info[1]) if r.exc_info else "") for r in failed] == [
        ("ERROR", "the last snapshot failed")
    ]
    await client.close()


async def test_shutdown_abandons_a_hung_append_after_the_drain_timeout(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(settings, CollabConfig(drain_timeout=0.5)) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        await client.sync()
        live = server.rooms.loaded(project)
        assert live is not None
        await eventually(lambda: not live.busy)
        live.writer.store = gate = Gate(server.store)  # never opened: the append never returns
        client.doc.get("lyrics", type=Text).insert(0, "never acknowledged")
        await eventually(lambda: gate.calls == 1)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert client.echoes == []
    abandoned = [r for r in caplog.records if getattr(r, "action", "") == "collab.drain_abandoned"]
    fields = [
        (r.__dict__["project"], r.__dict__["updates"], r.__dict__["snapshot"]) for r in abandoned
    ]
    assert fields == [(project, 1, False)]
    await client.close()


async def test_a_single_node_without_redis_has_no_bus_and_publishes_nothing(
    server: Server,
) -> None:
    assert server.rooms.relay is None
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    await client.sync()
    live = server.rooms.loaded(project)
    assert live is not None
    assert live.writer.publisher is None  # committed batches are broadcast locally and that is all
    client.doc.get("lyrics", type=Text).insert(0, "local")
    await eventually(lambda: len(client.echoes) == 1)
    await client.close()
