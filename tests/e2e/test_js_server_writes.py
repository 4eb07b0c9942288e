"""Server-side writes reach real JavaScript Yjs clients (y-websocket on Node) of a real
`jacameno serve` on one node without Redis (each log); on two nodes on one Postgres and Redis,
see test_js_nodes.py.
The update is sent to `POST /api/projects/{id}/updates`, the server-side writer's HTTP face;
what the clients converge to is the document the log alone rebuilds, and the log names the
actor."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.accounts import User
from harness.server import ServerProcess
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import converged, owner_and_member, post_update, retitled
from tests.e2e.conftest import JSClients


async def assert_logged(
    database_url: str, project: str, final: dict[str, Any], actor: User
) -> None:
    logged = await documents.logged_updates(database_url, project)
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == final
    by_server = [e["metadata"] for e in logged if e["metadata"].get("via") == "api"]
    assert by_server, "the server's write is in the log"
    assert all(m["user_id"] == actor.id and m["connection_id"] is None for m in by_server)


async def test_a_server_write_reaches_js_clients_on_a_node_without_redis(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, _bob, project, owner, editor = await owner_and_member(server, js_client, "bob", "editor")
    await owner.edit(["lyrics.insert", 0, "typed "])
    await post_update(server, project, alice, retitled("Served", "served "))

    async def arrived() -> bool:
        states = await asyncio.gather(owner.state(), editor.state())
        return all(s.json["meta"].get("title") == "Served" for s in states)

    await wait_until(arrived, "the server's write reaches both clients")
    final = await converged([owner, editor], [])
    assert "served " in final["lyrics"]
    assert "typed " in final["lyrics"]
    await assert_logged(database_url, project, final, alice)
