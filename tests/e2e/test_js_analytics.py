"""A studio session with real JavaScript Yjs clients (y-websocket and Hocuspocus on Node) against
a real `jacameno serve` on each log: they add tracks, add and move a clip, change a volume, type
lyrics and comment; then `GET /api/projects/{id}/tracks` shows the document they made, and the
analytics endpoints count exactly the edits, bytes and sessions the log holds for each of them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.accounts import User
from harness.server import ServerProcess
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import JSClient
from tests.e2e.conftest import JSClients

DRUMS = {"id": "t-drums", "name": "Drums", "kind": "audio", "volume_db": -6, "pan": 0}
BASS = {"id": "t-bass", "name": "Bass", "kind": "midi", "volume_db": -3, "pan": -0.25}
LYRICS = "city lights\n"
CLIP = {"id": "c1", "asset_id": "a1", "start": 0, "length": 8, "offset": 0, "gain_db": 0}


async def answered(http: httpx.AsyncClient, path: str, user: User) -> dict[str, Any]:
    response = await http.get(path, headers={"Authorization": f"Bearer {user.token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def logged_activity(database_url: str, project: str) -> dict[str, tuple[int, int]]:
    """Each user's edits and their bytes, as the project's log holds them."""
    activity: dict[str, tuple[int, int]] = {}
    for event in await documents.logged_updates(database_url, project):
        edits, size = activity.get(event["metadata"]["user_id"], (0, 0))
        activity[event["metadata"]["user_id"]] = (edits + 1, size + len(event["data"]))
    return activity


async def test_js_clients_studio_session_shows_in_the_tracks_and_analytics(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, bob, carol = await asyncio.gather(*(server.user(n) for n in ("alice", "bob", "carol")))
    project = await server.project(alice, (bob, "editor"), (carol, "viewer"))
    owner, editor, viewer = await asyncio.gather(
        js_client("alice"), js_client("bob"), js_client("carol")
    )
    await owner.connect(server.ws_url, project, alice.token)
    await editor.connect(server.ws_url, project, bob.token)
    await viewer.connect(server.ws_url, project, carol.token, dialect="hocuspocus")
    await asyncio.gather(owner.wait_synced(), editor.wait_synced(), viewer.wait_synced())

    await owner.edit(["meta.set", "title", "Night drive"], ["meta.set", "bpm", 96])
    await owner.edit(["tracks.push", DRUMS])
    await owner.wait_settled()
    await wait_until(lambda: _has_track(editor, "t-drums"), "the editor sees the drums", timeout=10)
    await editor.edit(["tracks.push", BASS], ["clips.push", "t-drums", CLIP])
    await editor.wait_settled()
    await wait_until(lambda: _has_clip(owner), "the owner sees the clip", timeout=10)
    await owner.edit(["clip.set", "t-drums", "c1", "start", 4])  # move the clip
    await editor.edit(["track.set", "t-bass", "volume_db", -9.5])  # pull the bass down
    for char in LYRICS:  # typed a key at a time: an update each
        await owner.edit(["lyrics.append", char])
    await editor.edit(
        [
            "comments.push",
            {"id": "k1", "author": bob.id, "text": "louder drums?", "at": 12, "resolved": False},
        ]
    )
    await asyncio.gather(owner.wait_settled(), editor.wait_settled())
    tracks_path = f"/api/projects/{project}/tracks"
    analytics_path = f"/api/projects/{project}/analytics?granularity=hour"

    async with server.http() as http:

        async def folded() -> bool:
            logged = await logged_activity(database_url, project)
            body = await answered(http, analytics_path, alice)
            counted = {c["user_id"]: (c["edits"], c["bytes"]) for c in body["collaborators"]}
            joined = body["totals"]["sessions"] == 3  # logged apart from the edits
            return joined and all(counted.get(user) == value for user, value in logged.items())

        await wait_until(folded, "the analytics count what the log holds", timeout=15)
        expected = [("t-drums", "Drums", -6.0), ("t-bass", "Bass", -9.5)]

        async def tracks_shown() -> bool:  # a viewer reads the tracks
            # The document's read model is a projection of its own: it may still be folding
            # the last edits when the analytics have counted them.
            shown = await answered(http, tracks_path, carol)
            tracks = [(t["id"], t["name"], t["volume_db"]) for t in shown["tracks"]]
            if tracks != expected:
                return False
            clips: list[dict[str, Any]] = shown["tracks"][0].get("clips") or []
            return bool(clips) and clips[0].get("start") == 4.0

        await wait_until(tracks_shown, "the tracks show the session's edits", timeout=15)

        logged = await logged_activity(database_url, project)
        assert set(logged) == {alice.id, bob.id}  # the viewer wrote nothing
        assert logged[alice.id][0] >= 3 + len(LYRICS)  # one edit per keystroke
        body = await answered(http, analytics_path, bob)  # an editor may read them too
        totals = body["totals"]
        assert totals["edits"] == sum(e for e, _ in logged.values())
        assert totals["bytes"] == sum(b for _, b in logged.values())
        assert sum(b["edits"] for b in body["series"]) == totals["edits"]
        sessions = {c["user_id"]: c["sessions"] for c in body["collaborators"]}
        assert sessions == {alice.id: 1, bob.id: 1, carol.id: 1}
        assert totals["collaborators"] == 3  # the viewer's session makes them active
        assert totals["open_sessions"] == 3

        # Everyone leaves: every session ends, timed.
        await asyncio.gather(owner.disconnect(), editor.disconnect(), viewer.disconnect())

        async def ended() -> bool:
            totals = (await answered(http, analytics_path, alice))["totals"]
            return bool(totals["open_sessions"] == 0)

        await wait_until(ended, "the sessions end", timeout=15)
        totals = (await answered(http, analytics_path, alice))["totals"]
        assert totals["sessions"] == 3
        assert totals["session_seconds"] > 0

        mine = await answered(http, "/api/me/analytics", bob)
        assert [(p["project_id"], p["edits"], p["bytes"]) for p in mine["projects"]] == [
            (project, *logged[bob.id])
        ]
        refused = await http.get(analytics_path, headers={"Authorization": f"Bearer {carol.token}"})
        assert refused.status_code == 403


async def _has_track(client: JSClient, track_id: str) -> bool:
    state = await client.state()
    return any(t.get("id") == track_id for t in state.json.get("tracks", []))


async def _has_clip(client: JSClient) -> bool:
    state = await client.state()
    drums = [t for t in state.json.get("tracks", []) if t.get("id") == "t-drums"]
    return bool(drums and drums[0].get("clips"))
