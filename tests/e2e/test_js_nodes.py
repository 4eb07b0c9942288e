"""The JavaScript Yjs client (y-websocket on Node) across two real `jacameno serve` processes on one
Postgres and one Redis: clients of one project on different nodes converge live, also when one
of them edits offline and comes back on the other node; and what they converge to is exactly the
document the log alone rebuilds. The nodes' periodic log check is set to 600 s, so whatever
reaches a node's clients after its room was loaded came through the bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pycrdt import Text

from harness.server import ServerProcess
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import (
    converged,
    edit_every_root,
    post_update,
    python_client,
    python_settled,
    retitled,
)
from tests.e2e.conftest import JSClients

Nodes = tuple[ServerProcess, ServerProcess]


@pytest.fixture
async def nodes(fresh_pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Nodes]:
    """Two nodes on one migrated Postgres database and one Redis, with one JWT secret."""
    secret = "e2e-" + uuid.uuid4().hex
    bus = {"JACAMENO_REDIS_URL": redis_url, "JACAMENO_COLLAB_LOG_CHECK_INTERVAL": "600"}
    a, b = (
        ServerProcess(fresh_pg_url, tmp_path / f"data-{n}", secret, tmp_path / f"{n}.log", bus)
        for n in ("a", "b")
    )
    try:
        await asyncio.gather(a.start(), b.start())
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())
        for name, node in (("a", a), ("b", b)):
            print(f"--- node {name} log ---\n{node.log_tail()}")


async def test_js_clients_on_two_nodes_converge_to_the_logged_document(
    nodes: Nodes, js_client: JSClients, fresh_pg_url: str
) -> None:
    a, b = nodes
    alice, bob, carol, dave, erin = await asyncio.gather(
        a.user("alice"), a.user("bob"), a.user("carol"), a.user("dave"), a.user("erin")
    )
    project = await a.project(
        alice, (bob, "editor"), (carol, "editor"), (dave, "editor"), (erin, "viewer")
    )
    owner, editor, remote = await asyncio.gather(
        js_client("alice"), js_client("bob"), js_client("carol")
    )
    # Every room is loaded (and subscribed) before the first edit: from here on, the only way
    # for an edit to reach the other node before the periodic check is the bus.
    await asyncio.gather(
        owner.connect(a.ws_url, project, alice.token),
        editor.connect(a.ws_url, project, bob.token),
        remote.connect(b.ws_url, project, carol.token),
    )
    await asyncio.gather(owner.wait_synced(), editor.wait_synced(), remote.wait_synced())
    python = await python_client(b, project, dave.token)
    js = [owner, editor, remote]

    # Round 1: two clients on node A, a JS and a Python client on node B, all at once.
    await edit_every_root(js, python)

    # Round 2: carol (node B) goes offline and edits; the others edit the same things on both
    # nodes meanwhile; carol comes back on node A.
    await remote.disconnect()
    await remote.edit(
        ["track.set", "t-alice", "muted", True],
        ["clips.push", "t-dave", {"id": "c-1", "asset_id": "a-1", "start": 2, "length": 8}],
        ["lyrics.insert", 0, "(carol) "],
        ["meta.set", "title", "Two Nodes (carol)"],
    )
    await asyncio.gather(
        owner.edit(["lyrics.delete", 0, 2], ["track.set", "t-dave", "pan", -1]),
        editor.edit(["tracks.delete", "t-carol"], ["meta.set", "title", "Two Nodes"]),
    )
    with python.doc.transaction():
        python.doc.get("lyrics", type=Text).insert(0, "dave ")
    await asyncio.gather(owner.wait_settled(), editor.wait_settled(), python_settled(python))
    assert (await remote.state()).unacked == 0  # nothing was sent while offline
    await remote.connect(a.ws_url, project, carol.token)
    await asyncio.gather(*(c.wait_settled() for c in js), python_settled(python))
    final = await converged(js, [python])

    assert "(carol) " in final["lyrics"]
    assert "dave " in final["lyrics"]
    by_id = {t["id"]: t for t in final["tracks"]}
    assert set(by_id) == {"t-alice", "t-bob", "t-dave"}
    assert by_id["t-alice"]["muted"] is True
    assert by_id["t-dave"]["pan"] == -1.0
    assert by_id["t-dave"]["clips"] == [
        {"id": "c-1", "asset_id": "a-1", "start": 2.0, "length": 8.0}
    ]

    logged = await documents.logged_updates(fresh_pg_url, project)
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == final
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id, bob.id, carol.id, dave.id}

    # A viewer joining node B now gets the same document from B's room, which learnt node A's
    # edits only from the bus.
    late = await js_client("erin")
    await late.connect(b.ws_url, project, erin.token)
    await late.wait_synced()
    assert documents.from_json((await late.state()).json) == final
    await python.close()


async def test_a_server_write_reaches_js_clients_on_two_nodes(
    nodes: Nodes, js_client: JSClients, fresh_pg_url: str
) -> None:
    a, b = nodes
    alice, bob = await asyncio.gather(a.user("alice"), a.user("bob"))
    project = await a.project(alice, (bob, "editor"))
    here, there = await asyncio.gather(js_client("alice"), js_client("bob"))
    await asyncio.gather(
        here.connect(a.ws_url, project, alice.token), there.connect(b.ws_url, project, bob.token)
    )
    await asyncio.gather(here.wait_synced(), there.wait_synced())
    # Once through node A, where a client has the room open, once through node B.
    await post_update(a, project, alice, retitled("From A", "a "))
    await post_update(b, project, bob, retitled("From B", "b "))

    async def arrived() -> bool:
        states = await asyncio.gather(here.state(), there.state())
        return all("a " in s.json["lyrics"] and "b " in s.json["lyrics"] for s in states)

    await wait_until(arrived, "both writes reach both nodes' clients")
    final = await converged([here, there], [])
    logged = await documents.logged_updates(fresh_pg_url, project)
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == final
    actors = {e["metadata"]["user_id"] for e in logged if e["metadata"].get("via") == "api"}
    assert actors == {alice.id, bob.id}
