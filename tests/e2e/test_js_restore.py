"""A restore reaches real JavaScript Yjs clients (y-websocket on Node) of a real `jacameno
serve` on one node without Redis (each log): they converge on the content of the version
restored, which the log alone rebuilds, and go on editing after it."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from domain import events
from eventstore import RecordedEvent
from harness.accounts import User
from harness.databases import open_store
from harness.server import ServerProcess, serving
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import JSClient, converged, owner_and_member
from tests.e2e.conftest import JSClients


async def logged_events(database_url: str, project: str) -> list[RecordedEvent]:
    store = await open_store(database_url)
    try:
        return await store.read_stream(events.stream_name(project))
    finally:
        await store.close()


async def at_version(database_url: str, project: str) -> tuple[int, dict[str, Any]]:
    """The project stream's head and the document the log rebuilds at it."""
    logged = await logged_events(database_url, project)
    updates = [e.data for e in logged if e.type == events.DOC_UPDATED]
    return logged[-1].version, documents.from_doc(documents.build(updates))


async def restore(server: ServerProcess, user: User, project: str, version: int) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.post(
            f"/api/projects/{project}/restore",
            json={"version": version},
            headers={"Authorization": f"Bearer {user.token}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_restore_reaches_js_clients_and_they_converge_on_the_version(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    _alice, bob, project, owner, editor = await owner_and_member(server, js_client, "bob", "editor")
    await owner.edit(
        ["meta.set", "title", "Night Drive"],
        ["tracks.push", {"id": "t1", "name": "Drums", "volume_db": -6}],
        ["lyrics.insert", 0, "verse one\n"],
    )
    await owner.wait_settled()
    version, then = await at_version(database_url, project)
    await editor.edit(
        ["meta.set", "title", "Wrong"],
        ["track.set", "t1", "volume_db", -12],
        ["tracks.push", {"id": "t2", "name": "Noise"}],
        ["lyrics.insert", 0, "oops "],
    )
    await editor.wait_settled()
    await converged([owner, editor], [])

    answer = await restore(server, bob, project, version)
    assert answer["changed"] is True

    async def restored() -> bool:
        states = await asyncio.gather(owner.state(), editor.state())
        return all(documents.from_json(s.json) == then for s in states)

    await wait_until(restored, "both clients show the version restored")
    assert documents.from_doc(await documents.from_log(database_url, project)) == then
    # Edits go on after the restore, and merge.
    await owner.edit(["lyrics.append", "after\n"])
    await owner.wait_settled()

    async def appended() -> bool:
        states = await asyncio.gather(owner.state(), editor.state())
        return all(s.json["lyrics"] == "verse one\nafter\n" for s in states)

    await wait_until(appended, "both clients show the edit made after the restore")
    final = await converged([owner, editor], [])
    assert documents.from_doc(await documents.from_log(database_url, project)) == final


async def test_a_restore_larger_than_an_update_reaches_js_clients_in_parts(
    database_url: str, tmp_path: Path, js_client: JSClients
) -> None:
    # Updates of at most 64 KiB: putting back 1,600 tracks is written as several updates, each
    # broadcast and logged as any; the JavaScript clients apply them in order and converge.
    limit = 64 * 1024
    environment = {"JACAMENO_COLLAB_MAX_MESSAGE_BYTES": str(limit)}
    async with serving(database_url, tmp_path, environment) as server:
        _alice, bob, project, owner, editor = await owner_and_member(
            server, js_client, "bob", "editor"
        )
        await owner.edit(["meta.set", "title", "Many tracks"])
        await owner.wait_settled()
        empty, _ = await at_version(database_url, project)
        for batch in range(4):
            await owner.edit(
                *[
                    ["tracks.push", {"id": f"t{batch}-{n}", "name": f"Track {n} " + "x" * 40}]
                    for n in range(400)
                ]
            )
        await owner.wait_settled()
        full, then = await at_version(database_url, project)
        assert len(then["tracks"]) == 1_600
        assert (await restore(server, bob, project, empty))["changed"] is True
        await wait_until(partial(_tracks, owner, editor, 0), "both clients show no track")
        head, _ = await at_version(database_url, project)

        assert (await restore(server, bob, project, full))["changed"] is True
        every = partial(_tracks, owner, editor, 1_600)
        await wait_until(every, "both clients show every track")
        written = [e for e in await logged_events(database_url, project) if e.version > head]
        parts = [e for e in written if e.type == events.DOC_UPDATED]
        assert len(parts) > 1
        assert all(len(e.data) <= limit for e in parts)
        assert [e.metadata["part"] for e in parts] == list(range(1, len(parts) + 1))
        assert documents.from_doc(await documents.from_log(database_url, project)) == then
        assert await converged([owner, editor], []) == then


async def _tracks(owner: JSClient, editor: JSClient, count: int) -> bool:
    states = await asyncio.gather(owner.state(), editor.state())
    return all(len(s.json["tracks"]) == count for s in states)
