"""History in words of edits made by the JavaScript Yjs client (not only pycrdt), through a real
server: each kind of studio edit the client can make reads as its sentence, with its author, and
the state at a version is what the clients saw then."""

from __future__ import annotations

from typing import Any

from harness.server import ServerProcess
from tests.e2e.clients import owner_and_member
from tests.e2e.conftest import JSClients


async def test_javascript_edits_read_as_sentences_by_their_authors(
    server: ServerProcess, js_client: JSClients
) -> None:
    alice, bob, project, owner, editor = await owner_and_member(server, js_client, "bob", "editor")
    edits: list[tuple[Any, list[Any]]] = [
        (owner, ["tracks.push", {"id": "t1", "name": "Bass", "volume_db": -3}]),
        (editor, ["track.set", "t1", "volume_db", -6]),
        (owner, ["track.set", "t1", "name", "Sub Bass"]),
        (editor, ["clips.push", "t1", {"id": "Intro", "start": 4.0, "length": 2.0}]),
        (owner, ["meta.set", "bpm", 128]),
        (editor, ["lyrics.append", "hello world!"]),
        (owner, ["lyrics.delete", 0, 6]),
        (owner, ["track.set", "t1", "muted", True]),
    ]
    acked = {id(owner): 0, id(editor): 0}
    for client, op in edits:
        await client.edit(op)
        acked[id(client)] += 1
        await client.wait_acked(acked[id(client)])
        await owner.wait_settled()
        await editor.wait_settled()
    async with server.http() as http:
        answer = await http.get(f"/api/projects/{project}/history", headers=alice.headers)
        assert answer.status_code == 200
        updates = [e for e in answer.json()["entries"] if e["type"] == "doc.updated"]
        who = {alice.id: "alice", bob.id: "bob"}
        assert [(who[e["user_id"]], e["summary"]) for e in updates] == [
            ("alice", ["added track Bass"]),
            ("bob", ["set Bass volume from -3 dB to -6 dB"]),
            ("alice", ["renamed track Bass to Sub Bass"]),
            ("bob", ["added clip Intro on Sub Bass at 4.0 s"]),
            ("alice", ["set the tempo to 128 BPM"]),
            ("bob", ["typed 12 characters in lyrics"]),
            ("alice", ["deleted 6 characters in lyrics"]),
            ("alice", ["muted Sub Bass"]),
        ]
        assert all(e["connection_id"] and e["node"] for e in updates)
        state = await http.get(
            f"/api/projects/{project}/state",
            params={"version": updates[5]["version"]},
            headers=bob.headers,
        )
        document = state.json()["document"]
        assert document["lyrics"] == "hello world!"
        assert document["meta"] == {"bpm": 128.0}
        assert document["tracks"][0]["clips"] == [{"id": "Intro", "start": 4.0, "length": 2.0}]
