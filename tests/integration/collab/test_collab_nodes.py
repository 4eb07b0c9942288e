"""Several nodes: two servers on one Postgres and one Redis. Clients on either node see each
other's edits and presence live; a node that missed bus messages reads them from the log; a node
without Redis keeps editing durably and its edits reach the others through the log."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from crdt import document
from domain import document as project_document
from domain import events
from harness.accounts import User
from harness.settings import app_settings
from harness.waiting import eventually
from jacameno.bus.redis import RedisBus
from jacameno.collab import awareness, protocol
from jacameno.collab.room import Actor
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, YClient, kill_clients, serving

# Far longer than any test: what converges did so through the bus, not the periodic log check.
NO_LOG_CHECK = CollabConfig(unload_delay=0.2, log_check_interval=600.0)


@pytest.fixture
def settings(tmp_path: Path, fresh_pg_url: str, redis_url: str) -> Settings:
    return replace(app_settings(tmp_path, fresh_pg_url), redis_url=redis_url)


@pytest.fixture
async def nodes(settings: Settings) -> AsyncIterator[tuple[Server, Server]]:
    async with serving(settings, NO_LOG_CHECK) as one, serving(settings, NO_LOG_CHECK) as other:
        yield one, other


async def _project(one: Server) -> tuple[User, User, str]:
    alice, bob = await one.user("alice"), await one.user("bob")
    return alice, bob, await one.project(alice, (bob, "editor"))


async def _synced(server: Server, project: str, user: User) -> YClient:
    client = await server.client(project, user)
    await client.sync()
    return client


def _write(client: YClient, text: str) -> None:
    client.doc.get("lyrics", type=Text).insert(0, text)


async def _converged(clients: list[YClient], server: Server, project: str) -> None:
    """Every client holds the document rebuilt from the log alone."""
    logged = await server.events(project, events.DOC_UPDATED)
    expected = project_document.read(
        document.build(document.EMPTY_UPDATE, [e.data for e in logged])
    )
    await eventually(lambda: all(c.content() == expected for c in clients))


def _bus(server: Server) -> RedisBus:
    relay = server.rooms.relay
    assert relay is not None
    assert isinstance(relay.bus, RedisBus)
    return relay.bus


async def _settled(project: str, *servers: Server) -> None:
    """Wait until every room of `project` has what the log has (the joins are logged too)."""
    rooms = [server.rooms.loaded(project) for server in servers]
    await eventually(lambda: all(server.rooms.sessions.idle for server in servers))
    await eventually(lambda: all(room is not None and not room.busy for room in rooms))
    version = await servers[0].store.stream_version(events.stream_name(project))
    await eventually(lambda: all(room is not None and room.version == version for room in rooms))


async def test_clients_on_two_nodes_converge_live_to_the_logged_document(
    nodes: tuple[Server, Server],
) -> None:
    one, other = nodes
    alice, bob, project = await _project(one)
    clients = [
        await _synced(one, project, alice),
        await _synced(one, project, bob),
        await _synced(other, project, alice),
        await _synced(other, project, bob),
    ]
    for round_ in range(10):
        for i, client in enumerate(clients):
            with client.doc.transaction():
                _write(client, f"{i}.{round_} ")
                client.doc.get("meta", type=Map)[f"from-{i}"] = round_
        await asyncio.sleep(0)
    await eventually(lambda: all(len(c.echoes) >= 40 for c in clients))
    await _converged(clients, one, project)
    text = clients[0].content()["lyrics"]
    assert all(f"{i}.{r} " in text for i in range(4) for r in range(10))
    for client in clients:
        await client.close()


async def test_presence_crosses_nodes_and_leaves_with_the_socket(
    nodes: tuple[Server, Server],
) -> None:
    one, other = nodes
    alice, bob, project = await _project(one)
    here = await _synced(one, project, alice)
    there = await _synced(other, project, bob)
    state = awareness.encode([awareness.Entry(41, 1, '{"user":"alice"}')])
    await here.send(protocol.encode_awareness(state))
    await eventually(lambda: there.awareness.get(41) == '{"user":"alice"}')
    # A socket joining the other node later gets the state it keeps.
    late = await _synced(other, project, bob)
    await eventually(lambda: 41 in late.awareness)
    await here.close()
    await eventually(lambda: 41 not in there.awareness and 41 not in late.awareness)
    await there.close()
    await late.close()


async def _missed(
    one: Server, other: Server, monkeypatch: pytest.MonkeyPatch, text: str
) -> tuple[YClient, YClient, str]:
    """A writer on `one` and a reader on `other`, and an edit of the writer that `one` did not
    publish: (writer, reader, project)."""
    alice, bob, project = await _project(one)
    writer = await _synced(one, project, alice)
    reader = await _synced(other, project, bob)
    await _settled(project, one, other)
    with monkeypatch.context() as patch:
        patch.setattr(_bus(one), "publish", lambda channel, message: None)
        _write(writer, text)
        await eventually(lambda: len(writer.echoes) == 1)
    return writer, reader, project


async def test_a_node_that_missed_messages_reads_them_from_the_log(
    nodes: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, other = nodes
    writer, reader, project = await _missed(one, other, monkeypatch, "lost on the bus ")
    # The other node cannot know: its room is a version behind the log, so its clients lack it.
    behind = other.rooms.loaded(project)
    assert behind is not None
    assert behind.version == await one.store.stream_version(events.stream_name(project)) - 1
    assert "lost" not in reader.content()["lyrics"]
    _write(writer, "published ")  # one version ahead of what the other node has: a gap
    await eventually(lambda: len(writer.echoes) == 2)
    await _converged([writer, reader], one, project)
    assert reader.content()["lyrics"] == "published lost on the bus "
    await writer.close()
    await reader.close()


async def test_a_node_whose_bus_connection_was_killed_catches_up_from_the_log(
    nodes: tuple[Server, Server], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, other = nodes
    # Published while the other node is away: lost for it (simulated by not publishing).
    writer, reader, project = await _missed(one, other, monkeypatch, "while away ")
    assert await kill_clients(redis_url, _bus(other).subscriber_name) == 1
    await _converged([writer, reader], one, project)
    assert reader.content()["lyrics"] == "while away "
    # And the bus works again afterwards.
    _write(writer, "live ")
    await eventually(lambda: reader.content()["lyrics"] == "live while away ")
    await writer.close()
    await reader.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_without_redis_a_node_edits_durably_and_reaches_the_others_through_the_log(
    settings: Settings,
) -> None:
    checked = replace(NO_LOG_CHECK, log_check_interval=0.3, bus_max_backoff=0.2)
    cut_off = replace(settings, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async with serving(settings, checked) as one, serving(cut_off, checked) as other:
        alice, bob, project = await _project(one)
        connected = await _synced(one, project, alice)
        alone = await _synced(other, project, bob)
        _write(alone, "durable ")
        await eventually(lambda: len(alone.echoes) == 1)  # acknowledged: it is in the log
        assert [e.data for e in await one.events(project, events.DOC_UPDATED)] == alone.sent
        # Its bus dropped the message; the other node's log check brings it within 0.3 s.
        await eventually(lambda: connected.content()["lyrics"] == "durable ")
        assert _bus(other).dropped >= 1
        _write(connected, "back ")
        await eventually(lambda: alone.content()["lyrics"] == "back durable ")
        await _converged([connected, alone], one, project)
        await connected.close()
        await alone.close()


async def test_a_deleted_users_sockets_are_closed_on_every_node(
    nodes: tuple[Server, Server],
) -> None:
    one, other = nodes
    alice, bob, project = await _project(one)
    here = await _synced(one, project, bob)
    there = await _synced(other, project, bob)
    owner = await _synced(other, project, alice)
    await one.app.state.services.identity.accounts.delete(bob.id)
    assert await here.wait_closed() == 4401
    assert await there.wait_closed() == 4401
    assert owner.close_code is None
    await owner.close()


async def test_a_server_write_on_one_node_reaches_the_clients_of_both(
    nodes: tuple[Server, Server],
) -> None:
    one, other = nodes
    alice, bob, project = await _project(one)
    here, there = await _synced(one, project, alice), await _synced(other, project, bob)
    _write(here, "verse ")
    await eventually(lambda: there.content()["lyrics"] == "verse ")

    def chorus(doc: Doc[Any]) -> None:
        doc.get("lyrics", type=Text).insert(6, "chorus")

    # Through the room of the node that has it open, and through a node that loads it for the
    # write: either way the other node learns it from the bus (the log check is off).
    assert await one.rooms.edit(project, chorus, Actor(alice.id, "restore")) is not None
    await eventually(
        lambda: here.content()["lyrics"] == there.content()["lyrics"] == "verse chorus"
    )
    third = await one.project(alice, (bob, "editor"))
    watcher = await _synced(other, third, bob)
    assert one.rooms.loaded(third) is None
    update = Doc[Any]()
    update.get("meta", type=Map)["title"] = "From the server"
    assert await one.rooms.write(third, update.get_update(), Actor(alice.id, "ai")) is not None
    await eventually(lambda: watcher.content()["meta"].get("title") == "From the server")
    for project_id, clients in ((project, [here, there]), (third, [watcher])):
        await _converged(clients, one, project_id)
        logged = await one.events(project_id, events.DOC_UPDATED)
        assert [e.metadata.get("via") for e in logged][-1] in ("restore", "ai")
    for client in (here, there, watcher):
        await client.close()
