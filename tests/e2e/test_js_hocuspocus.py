"""@hocuspocus/provider 4 (Node) on `/hocuspocus` against a real `jacameno serve`, on SQLite and
Postgres, in the same room as y-websocket clients: its SyncStatus acknowledgement means the update
is in the log, the two dialects converge on the logged document, a readonly member's edits are
refused, and a bad token is refused in-band."""

from __future__ import annotations

import asyncio
import time

from harness.databases import open_store
from harness.server import ServerProcess
from harness.waiting import wait_until
from jacameno.auth.tokens import AccessTokens
from tests.e2e import documents
from tests.e2e.clients import converged, owner_and_member
from tests.e2e.conftest import JSClients


async def test_hocuspocus_and_y_websocket_clients_share_the_logged_document(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    _alice, bob, project, owner, editor = await owner_and_member(
        server, js_client, "bob", "editor", dialect="hocuspocus"
    )
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


async def test_session_aware_providers_never_disconnect_an_editor(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    """@hocuspocus/provider with `sessionAwareness: true` names its document
    `<project>\\0<session>`; it joins and leaves while an editor types, and the editor is never
    disconnected, its typing is all logged, and the log has a leave for every join."""
    alice, victor = await asyncio.gather(server.user("alice"), server.user("victor"))
    project = await server.project(alice, (victor, "viewer"))
    editor = await js_client("alice")
    await editor.connect(server.ws_url, project, alice.token)
    await editor.wait_synced()
    await editor.start_typing("la " * 200, interval_ms=10)
    for round_ in range(5):
        viewer = await js_client(f"victor{round_}")
        await viewer.connect(
            server.ws_url, project, victor.token, dialect="hocuspocus", session_awareness=True
        )
        await viewer.wait_synced()
        assert {"event": "authenticated", "scope": "readonly"} in viewer.events
        await viewer.close()
    writer = await js_client("alice-hocuspocus")
    await writer.connect(
        server.ws_url, project, alice.token, dialect="hocuspocus", session_awareness=True
    )
    await writer.wait_synced()
    await writer.edit(["meta.set", "title", "session aware"])
    await writer.wait_settled()
    typed = await editor.stop_typing()
    await editor.wait_settled()
    assert not [e for e in editor.events if e["event"] == "closed"]
    assert (await editor.state()).json["lyrics"] == ("la " * 200)[:typed]
    await writer.close()
    await editor.close()

    async def paired() -> bool:
        store = await open_store(database_url)
        try:
            logged = await store.read_stream(f"project-{project}")
        finally:
            await store.close()
        joined = [e.metadata["connection_id"] for e in logged if e.type == "session.joined"]
        left = [e.metadata["connection_id"] for e in logged if e.type == "session.left"]
        return len(joined) == 7 and sorted(joined) == sorted(left)

    await wait_until(paired, "every session.joined has its session.left")
    assert documents.from_doc(await documents.from_log(database_url, project))["meta"] == {
        "title": "session aware"
    }


async def test_access_ends_with_the_token_and_a_hocuspocus_provider_renews_it(
    server: ServerProcess, js_client: JSClients
) -> None:
    """A y-websocket socket is closed with 4401 when its token expires; a Hocuspocus provider
    whose `token` option is a function is asked for a fresh one before, and stays."""
    alice = await server.user("alice")
    project = await server.project(alice)
    tokens = AccessTokens(server.jwt_secret, 900)

    def expiring_in(seconds: float) -> str:
        return tokens.issue(alice.id, now=time.time() - 900 + seconds)

    short, renewing, late = await asyncio.gather(
        js_client("short"), js_client("renewing"), js_client("late")
    )
    await short.connect(server.ws_url, project, expiring_in(2.0))
    await renewing.connect(server.ws_url, project, expiring_in(31.0), dialect="hocuspocus")
    # less than the 30 s ahead left when it joins: asked at once, and its provider fetches a
    # fresh token then
    await late.connect(
        server.ws_url, project, expiring_in(8.0), "hocuspocus", renewal_token=alice.token
    )
    await asyncio.gather(short.wait_synced(), renewing.wait_synced(), late.wait_synced())
    await renewing.set_token(alice.token)
    closed = await short.wait_event(lambda e: e["event"] == "closed", timeout=6.0)
    assert (closed["code"], closed["reason"]) == (4401, "the access token expired")

    # Asked 30 s before its expiry (after about 1 s), the provider answers with the fresh token.
    def authenticated() -> int:
        return sum(1 for e in renewing.events if e["event"] == "authenticated")

    await renewing.wait_event(lambda e: authenticated() == 2, timeout=6.0)
    await late.wait_event(
        lambda e: sum(1 for e in late.events if e["event"] == "authenticated") == 2, timeout=6.0
    )
    await renewing.edit(["meta.set", "title", "renewed"])
    await renewing.wait_settled()
    for client in (renewing, late):
        assert not [e for e in client.events if e["event"] in ("closed", "permission-denied")]
