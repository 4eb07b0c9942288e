"""/hocuspocus before authentication: frames for documents that are not authenticated keep
nothing on the server, names and documents per socket are bounded, a socket must authenticate
a document within a deadline, the node bounds its unauthenticated sockets; and Hocuspocus's
SyncReply (type 4) is served as a sync message."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from crdt.encoding import write_var_bytes
from domain import document as project_document
from domain import events
from harness.waiting import TIMEOUT, eventually
from jacameno.collab import hocuspocus, protocol
from jacameno.collab.lobby import AUTH_TIMEOUT_REASON
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server
from tests.integration.collab.test_collab_hocuspocus import HocuspocusClient, _edit

AUTH_TIMEOUT = 0.5


@pytest.fixture
def config() -> CollabConfig:
    return CollabConfig(
        unload_delay=0.2,
        max_documents_per_socket=2,
        auth_timeout=AUTH_TIMEOUT,
        max_unauthenticated_sockets=4,
    )


def _documents_held() -> int:
    gc.collect()  # what earlier tests left unreachable is not held by this server
    return sum(type(o) is hocuspocus._Document for o in gc.get_objects())


async def _closed(client: HocuspocusClient) -> tuple[int | None, str | None]:
    await asyncio.wait_for(client._reader, TIMEOUT)
    return client.ws.close_code, client.ws.close_reason


async def test_frames_for_unauthenticated_names_keep_nothing(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await HocuspocusClient.open(server)
    step1 = bytes((protocol.SYNC_STEP1,)) + write_var_bytes(b"\x00")
    for i in range(500):
        name = f"{i:04d}-" + "n" * 200
        await client.send(name, hocuspocus.SYNC, step1)
        await client.send(name, hocuspocus.AWARENESS, write_var_bytes(b"\x00"))
    # Frames are handled in order: once this document is in, every frame above was handled.
    document = await client.attach(project, alice.token)
    await eventually(lambda: document.synced)
    assert _documents_held() == 1
    await client.close()


async def test_a_document_name_over_the_bound_closes_the_socket_4400(server: Server) -> None:
    client = await HocuspocusClient.open(server)
    await client.send("n" * 257, hocuspocus.QUERY_AWARENESS)
    code, reason = await _closed(client)
    assert code == 4400
    assert reason is not None
    assert "document name too long" in reason


async def test_documents_per_socket_are_bounded(server: Server) -> None:
    alice = await server.user("alice")
    projects = [await server.project(alice) for _ in range(3)]
    client = await HocuspocusClient.open(server)
    first = await client.attach(projects[0], alice.token)
    second = await client.attach(projects[1], alice.token)
    third = await client.attach(projects[2], alice.token)
    await eventually(lambda: first.synced and second.synced and third.denied is not None)
    assert third.denied == hocuspocus.TOO_MANY_DOCUMENTS
    # Closing a document makes room for another.
    await client.send(projects[0], hocuspocus.CLOSE)
    again = await client.attach(projects[2], alice.token)
    await eventually(lambda: again.synced)
    await client.close()


async def test_a_socket_without_an_authenticated_document_is_closed_4401(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    silent = await HocuspocusClient.open(server)
    denied = await HocuspocusClient.open(server)
    refused = await denied.attach(project, "not-a-token")
    served = await HocuspocusClient.open(server)
    document = await served.attach(project, alice.token)
    left = await HocuspocusClient.open(server)
    leaving = await left.attach(project, alice.token)
    await eventually(lambda: document.synced and leaving.synced and refused.denied is not None)
    await left.send(project, hocuspocus.CLOSE)  # its only document: it waits again
    started = time.monotonic()
    for client in (silent, denied, left):
        assert await _closed(client) == (4401, AUTH_TIMEOUT_REASON)
    assert time.monotonic() - started < AUTH_TIMEOUT + 2.0
    # The authenticated socket is served past the deadline.
    await served.update(project, _edit(document, "still here"))
    await eventually(lambda: document.statuses[-1:] == [1] and len(document.statuses) == 2)
    await served.close()


async def test_unauthenticated_sockets_are_bounded_per_node(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    waiting = [await HocuspocusClient.open(server) for _ in range(4)]
    extra = await HocuspocusClient.open(server)
    assert await _closed(extra) == (1013, "too many unauthenticated sockets")
    # One authenticates: it leaves the lobby, and a newcomer is let in.
    document = await waiting[0].attach(project, alice.token)
    await eventually(lambda: document.synced)
    newcomer = await HocuspocusClient.open(server)
    joined = await newcomer.attach(project, alice.token)
    await eventually(lambda: joined.synced)
    for client in [*waiting, newcomer]:
        await client.close()
    await eventually(lambda: server.app.state.services.live.lobby.waiting == 0)


async def test_sync_reply_is_served_as_a_sync_message(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await HocuspocusClient.open(server)
    document = await client.attach(project, alice.token)
    # The client's (empty) answer to the server's step 1 is acknowledged first.
    await eventually(lambda: document.synced and document.statuses == [1])
    body = bytes((protocol.SYNC_STEP2,)) + write_var_bytes(_edit(document, "a reply"))
    await client.send(project, hocuspocus.SYNC_REPLY, body)
    await eventually(lambda: document.statuses == [1, 1])
    logged = await server.events(project, events.DOC_UPDATED)
    assert len(logged) == 1
    # A step 1 in a SyncReply is answered with step 2, as in a sync message.
    fresh = await HocuspocusClient.open(server)
    other = await fresh.attach(project, alice.token)
    await eventually(lambda: other.synced)
    other.synced = False
    step1 = bytes((protocol.SYNC_STEP1,)) + write_var_bytes(b"\x00")
    await fresh.send(project, hocuspocus.SYNC_REPLY, step1)
    await eventually(lambda: other.synced)
    assert project_document.read(other.doc)["lyrics"] == "a reply"
    assert fresh.ws.close_code is None
    await fresh.close()
    await client.close()
