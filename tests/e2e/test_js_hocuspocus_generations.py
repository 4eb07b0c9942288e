"""The Hocuspocus providers of the 2.x and 3.x generations (npm aliases of
@hocuspocus/provider, tests/e2e/js/package.json), still common in the field, beside 4.8 on one
project of a real `jacameno serve`, on SQLite and Postgres: each authenticates, edits, is
acknowledged, and all converge on the logged document."""

from __future__ import annotations

import asyncio

from harness.server import ServerProcess
from tests.e2e import documents
from tests.e2e.clients import converged
from tests.e2e.conftest import JSClients

GENERATIONS = ["hocuspocus-v2", "hocuspocus-v3", "hocuspocus"]


async def test_hocuspocus_providers_of_three_generations_converge_with_the_log(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    clients = await asyncio.gather(*(js_client(g) for g in GENERATIONS))
    for client, dialect in zip(clients, GENERATIONS, strict=True):
        await client.connect(server.ws_url, project, alice.token, dialect=dialect)
    await asyncio.gather(*(c.wait_synced() for c in clients))
    for client in clients:
        assert {"event": "authenticated", "scope": "read-write"} in client.events
    await asyncio.gather(
        *(
            client.edit(
                ["tracks.push", {"id": f"t-{dialect}", "name": dialect, "kind": "midi"}],
                ["lyrics.append", f"{dialect}\n"],
            )
            for client, dialect in zip(clients, GENERATIONS, strict=True)
        )
    )
    await asyncio.gather(*(c.wait_settled() for c in clients))
    await clients[0].edit(["meta.set", "title", "Generations"])
    await clients[0].wait_settled()
    final = await converged(list(clients), [])
    assert final["meta"]["title"] == "Generations"
    assert set(final["lyrics"].splitlines()) == set(GENERATIONS)
    assert {t["id"] for t in final["tracks"]} == {f"t-{g}" for g in GENERATIONS}
    assert documents.from_doc(await documents.from_log(database_url, project)) == final
    assert not [e for c in clients for e in c.events if e["event"] == "closed"]
