"""@hocuspocus/provider 4 (Node) on `/hocuspocus` against a real `jacameno serve`, on SQLite and
Postgres, in the same room as y-websocket clients: its SyncStatus acknowledgement means the update
is in the log, the two dialects converge on the logged document, a readonly member's edits are
refused, and a bad token is refused in-band."""

from __future__ import annotations

import asyncio

from tests.e2e import documents
from tests.e2e.clients import converged
from tests.e2e.conftest import JSClients
from tests.e2e.server import ServerProcess


async def test_hocuspocus_and_y_websocket_clients_share_the_logged_document(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, bob = await asyncio.gather(server.user("alice"), server.user("bob"))
    project = await server.project(alice, (bob, "editor"))
    owner, editor = await asyncio.gather(js_client("alice"), js_client("bob"))
    await owner.connect(server.ws_url, project, alice.token)
    await editor.connect(server.ws_url, project, bob.token, dialect="hocuspocus")
    await asyncio.gather(owner.wait_synced(), editor.wait_synced())
    assert {"event": "authenticated", "scope": "read-write"} in editor.events

    await editor.edit(
        ["meta.set", "title", "Hocus"],
        ["tracks.push", {"id": "t-bob", "name": "Pads", "kind": "midi", "volume_db": -9}],
        ["lyrics.append", "from hocuspocus\n"],
    )
    await editor.wait_settled()
    # SyncStatus comes after the commit: the log has the edit already.
    logged = await documents.logged_updates(database_url, project)
    assert [e["metadata"]["user_id"] for e in logged] == [bob.id]

    await asyncio.gather(
        owner.edit(["lyrics.insert", 0, "from y-websocket\n"], ["track.set", "t-bob", "pan", 0.5]),
        editor.edit(["meta.set", "bpm", 100], ["lyrics.append", "again\n"]),
    )
    await asyncio.gather(owner.wait_settled(), editor.wait_settled())
    final = await converged([owner, editor], [])
    assert final["tracks"][0]["pan"] == 0.5
    assert set(final["lyrics"].splitlines()) == {"from y-websocket", "from hocuspocus", "again"}
    assert documents.from_doc(await documents.from_log(database_url, project)) == final


async def test_hocuspocus_readonly_member_and_bad_token_are_refused(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, victor = await asyncio.gather(server.user("alice"), server.user("victor"))
    project = await server.project(alice, (victor, "viewer"))
    owner, viewer, intruder = await asyncio.gather(
        js_client("alice"), js_client("victor"), js_client("intruder")
    )
    await owner.connect(server.ws_url, project, alice.token)
    await viewer.connect(server.ws_url, project, victor.token, dialect="hocuspocus")
    await intruder.connect(server.ws_url, project, "not-a-token", dialect="hocuspocus")
    await asyncio.gather(owner.wait_synced(), viewer.wait_synced())
    assert {"event": "authenticated", "scope": "readonly"} in viewer.events
    await intruder.wait_event(lambda e: e["event"] == "permission-denied")

    await viewer.edit(["lyrics.append", "VIEWER"], ["meta.set", "bpm", 1])
    await viewer.wait_event(lambda e: e["event"] == "refused")  # SyncStatus 0
    await owner.edit(["lyrics.append", "owner\n"])
    await owner.wait_settled()
    owner_doc = documents.from_json((await owner.state()).json)
    assert owner_doc == {"meta": {}, "tracks": [], "lyrics": "owner\n"}
    viewer_state = await viewer.state()
    assert viewer_state.unacked > 0
    assert "VIEWER" in viewer_state.json["lyrics"]
    logged = await documents.logged_updates(database_url, project)
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id}
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == owner_doc
