"""An audit of a project edited by real JavaScript Yjs clients (y-websocket on Node), through a
real `jacameno serve`: a viewer reads the history (whole, by path, by user), the state at each
version (as JSON, and as a Yjs update that a JS Yjs Doc opens) and a diff, and is refused a
restore; an editor's restore reaches both connected clients, which converge on the version
restored, and history names it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness import accounts
from harness.accounts import User
from harness.server import ServerProcess
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import JSClient, owner_and_member, take_turns
from tests.e2e.conftest import JSClients

# (author, the ops of one transaction, what its history entry says).
TURNS: list[tuple[str, list[list[Any]], list[str]]] = [
    (
        "alice",
        [
            ["meta.set", "title", "Night Drive"],
            ["tracks.push", {"id": "t1", "name": "Drums", "volume_db": -6}],
            ["lyrics.insert", 0, "verse one\n"],
        ],
        ['set the title to "Night Drive"', "added track Drums", "typed 10 characters in lyrics"],
    ),
    (
        "bob",
        [
            ["tracks.push", {"id": "t2", "name": "Bass", "volume_db": -3}],
            ["clips.push", "t2", {"id": "c1", "name": "Riff", "start": 0, "length": 4}],
        ],
        ["added track Bass"],
    ),
    (
        "alice",
        [["track.set", "t1", "volume_db", -3], ["lyrics.append", "chorus"]],
        ["set Drums volume from -6 dB to -3 dB", "typed 6 characters in lyrics"],
    ),
    (
        "bob",
        [
            ["comments.push", {"id": "k1", "text": "more bass", "track_id": "t2"}],
            ["lyrics.insert", 0, "intro\n"],
        ],
        ["typed 6 characters in lyrics", "commented on Bass"],
    ),
    ("bob", [["track.set", "t2", "muted", True]], ["muted Bass"]),
    (
        "alice",
        [
            ["clip.set", "t2", "c1", "start", 2],
            ["markers.push", {"id": "m1", "name": "Chorus", "at": 32}],
        ],
        ["moved clip Riff on Bass from 0.0 s to 2.0 s", "added marker Chorus at 32.0 s"],
    ),
]


async def read(
    http: httpx.AsyncClient, user: User, route: str, params: dict[str, Any] | None = None
) -> Any:
    """The JSON of a GET of `route` with `params` as `user`, which must answer 200."""
    answer = await http.get(route, params=params, headers=user.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def versions(entries: list[dict[str, Any]], kind: str = "doc.updated") -> list[int]:
    return [e["version"] for e in entries if e["type"] == kind]


async def showing(clients: list[JSClient], document: dict[str, Any]) -> bool:
    states = await asyncio.gather(*(c.state() for c in clients))
    return all(documents.from_json(s.json) == document for s in states)


async def test_a_viewer_audits_javascript_edits_and_an_editor_restores_them(
    server: ServerProcess, js_client: JSClients
) -> None:
    alice, bob, project, owner, editor = await owner_and_member(server, js_client, "bob", "editor")
    carol = await server.user("carol")
    async with server.http() as http:
        await accounts.invite(http, alice.headers, project, carol.email, "viewer")
    clients = {"alice": owner, "bob": editor}
    seen = await take_turns([(clients[w], ops) for w, ops, _ in TURNS], [owner, editor])
    base = f"/api/projects/{project}"
    who = {alice.id: "alice", bob.id: "bob"}

    async with server.http() as http:
        # History: every turn by its author, in order; then filtered by path and by user.
        entries = (await read(http, carol, f"{base}/history", {"limit": 200}))["entries"]
        updates = [e for e in entries if e["type"] == "doc.updated"]
        assert [(who[e["user_id"]], e["summary"]) for e in updates] == [
            (w, sentences) for w, _, sentences in TURNS
        ]
        turn = [e["version"] for e in updates]  # the version each turn took
        on_bass = await read(http, carol, f"{base}/history", {"path": "tracks/t2"})
        assert [e["version"] for e in on_bass["entries"]] == [turn[1], turn[4], turn[5]]
        on_lyrics = await read(http, carol, f"{base}/history", {"path": "lyrics"})
        assert [e["version"] for e in on_lyrics["entries"]] == [turn[0], turn[2], turn[3]]
        by_bob = (await read(http, carol, f"{base}/history", {"user": bob.id}))["entries"]
        assert {e["user_id"] for e in by_bob} == {bob.id}
        assert versions(by_bob) == [turn[1], turn[3], turn[4]]
        assert versions(by_bob, "session.joined") != []

        # The state at each version is what the clients showed once that turn was acknowledged.
        for version, document in zip(turn, seen, strict=True):
            state = await read(http, carol, f"{base}/state", {"version": version})
            assert state["version"] == version
            assert documents.from_json(state["document"]) == document
        empty = await read(http, carol, f"{base}/state", {"version": turn[0] - 1})
        assert documents.from_json(empty["document"]) == documents.from_json({})
        # As a Yjs update, a JavaScript Yjs Doc opens it to the same document.
        answer = await http.get(
            f"{base}/state", params={"version": turn[3], "format": "yjs"}, headers=carol.headers
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["x-jacameno-version"] == str(turn[3])
        assert documents.from_json(await editor.open(answer.content)) == seen[3]

        # The diff between two versions, both ways: its changes and the lyrics' runs.
        diff = await read(http, carol, f"{base}/diff", {"from": turn[0], "to": turn[3]})
        assert (diff["from"]["version"], diff["to"]["version"]) == (turn[0], turn[3])
        assert [(c["kind"], c["path"], c["summary"]) for c in diff["changes"]] == [
            ("track.volume_db", "tracks/t1/volume_db", "set Drums volume from -6 dB to -3 dB"),
            ("track.added", "tracks/t2", "added track Bass"),
            ("lyrics.typed", "lyrics", "typed 12 characters in lyrics"),
            ("comment.added", "comments/k1", "commented on Bass"),
        ]
        volume, added = diff["changes"][:2]
        assert (volume["before"], volume["after"]) == (-6, -3)
        assert documents.normalize(added["after"]) == seen[3]["tracks"][1]
        assert diff["lyrics"] == [
            {"op": "insert", "text": "intro\n"},
            {"op": "equal", "text": "verse one\n"},
            {"op": "insert", "text": "chorus"},
        ]
        back = await read(http, carol, f"{base}/diff", {"from": turn[3], "to": turn[0]})
        assert [c["summary"] for c in back["changes"]] == [
            "set Drums volume from -3 dB to -6 dB",
            "deleted track Bass",
            "deleted 12 characters in lyrics",
            "deleted a comment",
        ]
        assert [run["op"] for run in back["lyrics"]] == ["delete", "equal", "delete"]

        # The viewer may not restore; an editor may, and both clients converge on the version.
        refused = await http.post(
            f"{base}/restore", json={"version": turn[2]}, headers=carol.headers
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        restored = await http.post(
            f"{base}/restore", json={"version": turn[2]}, headers=bob.headers
        )
        assert restored.status_code == 200, restored.text
        assert restored.json()["changed"] is True
        await wait_until(
            lambda: showing([owner, editor], seen[2]), "both clients show the version restored"
        )
        head = await read(http, carol, f"{base}/state")
        assert documents.from_json(head["document"]) == seen[2]

        # History: the restore's update (bob's, from no socket), then the restore named; the
        # refused restore left nothing.
        after = await read(http, carol, f"{base}/history", {"after": entries[-1]["version"]})
        update, named = after["entries"]
        assert (update["type"], update["user_id"], update["connection_id"]) == (
            "doc.updated",
            bob.id,
            None,
        )
        assert update["summary"] == [
            "unmuted Bass",
            "moved clip Riff on Bass from 2.0 s to 0.0 s",
            "deleted 6 characters in lyrics",
            "deleted a comment",
            "deleted marker Chorus",
        ]
        assert (named["type"], named["user_id"], named["version"]) == (
            "doc.restored",
            bob.id,
            restored.json()["event_version"],
        )
        assert named["summary"] == [f"restored version {turn[2]}"]
