"""History in words of edits made by the JavaScript Yjs client (not only pycrdt), through a real
server: each kind of studio edit the client can make reads as its sentence, with its author, and
the state at a version is what the clients saw then."""

from __future__ import annotations

from typing import Any

from harness.server import ServerProcess
from tests.e2e.clients import owner_and_member, take_turns
from tests.e2e.conftest import JSClients

# Every kind of change domain/changes.py describes: the known answers below make each of them.
EVERY_KIND = {
    *("meta.title", "meta.bpm", "meta.key", "meta.time_signature"),
    *("track.added", "track.renamed", "track.volume_db", "track.pan", "track.color"),
    *("track.kind", "track.muted", "track.solo", "track.analysis", "track.changed"),
    *("track.moved", "track.deleted"),
    *("clip.added", "clip.start", "clip.length", "clip.offset", "clip.gain_db"),
    *("clip.asset_id", "clip.deleted"),
    *("lyrics.typed", "lyrics.deleted"),
    *("comment.added", "comment.resolved", "comment.reopened", "comment.edited"),
    *("comment.deleted", "marker.added", "marker.renamed", "marker.moved", "marker.deleted"),
    "root.changed",
}

# (author, the ops of one JS transaction, the sentences its update reads as). alice owns the
# project, bob edits it; they take turns so that each client edits what the other wrote.
KNOWN_ANSWERS: list[tuple[str, list[list[Any]], list[str]]] = [
    ("alice", [["meta.set", "title", "Night Drive"]], ['set the title to "Night Drive"']),
    (
        "bob",
        [["meta.set", "title", "Day Drive"]],
        ['renamed the project from "Night Drive" to "Day Drive"'],
    ),
    ("alice", [["meta.delete", "title"]], ["cleared the title"]),
    ("bob", [["meta.set", "bpm", 120]], ["set the tempo to 120 BPM"]),
    ("alice", [["meta.set", "bpm", 128.5]], ["set the tempo from 120 to 128.5 BPM"]),
    ("bob", [["meta.set", "key", "C"]], ["set the key to C"]),
    ("alice", [["meta.set", "key", "A minor"]], ["set the key from C to A minor"]),
    ("bob", [["meta.set", "time_signature", "3/4"]], ["set the time signature to 3/4"]),
    ("alice", [["meta.delete", "bpm"]], ["cleared the tempo"]),
    (
        "alice",
        [["tracks.push", {"id": "t1", "name": "Bass", "kind": "audio", "volume_db": -3, "pan": 0}]],
        ["added track Bass"],
    ),
    ("bob", [["tracks.push", {"id": "t2"}]], ["added track 2"]),
    ("alice", [["track.set", "t2", "name", "Keys"]], ["renamed track 2 to Keys"]),
    ("bob", [["track.set", "t2", "name", "Piano"]], ["renamed track Keys to Piano"]),
    ("bob", [["track.set", "t1", "volume_db", -6]], ["set Bass volume from -3 dB to -6 dB"]),
    ("alice", [["track.set", "t1", "pan", -0.5]], ["set Bass pan from 0 to -0.5"]),
    ("bob", [["track.set", "t1", "color", "#f00"]], ["set Bass color to #f00"]),
    ("alice", [["track.set", "t1", "kind", "midi"]], ["set Bass kind from audio to midi"]),
    ("bob", [["track.set", "t1", "muted", True]], ["muted Bass"]),
    ("alice", [["track.set", "t1", "muted", False]], ["unmuted Bass"]),
    ("bob", [["track.set", "t1", "solo", True]], ["soloed Bass"]),
    ("alice", [["track.set", "t1", "solo", False]], ["unsoloed Bass"]),
    (
        "bob",
        [["track.set_map", "t1", "analysis", {"tempo": 128, "key": "A minor"}]],
        ["updated the analysis of Bass"],
    ),
    ("alice", [["track.set", "t1", "reverb", 0.3]], ["changed reverb of Bass"]),
    ("bob", [["tracks.move", "t2", 0]], ["reordered tracks"]),
    (
        "alice",
        [
            [
                "clips.push",
                "t1",
                {"id": "c1", "name": "Intro", "asset_id": "a1", "start": 4, "length": 2},
            ]
        ],
        ["added clip Intro on Bass at 4.0 s"],
    ),
    (
        "bob",
        [["clip.set", "t1", "c1", "start", 8]],
        ["moved clip Intro on Bass from 4.0 s to 8.0 s"],
    ),
    (
        "alice",
        [["clip.set", "t1", "c1", "length", 2.5]],
        ["resized clip Intro on Bass from 2.0 s to 2.5 s"],
    ),
    (
        "bob",
        [["clip.set", "t1", "c1", "offset", 0.25]],
        ["set the offset of clip Intro on Bass to 0.25 s"],
    ),
    (
        "alice",
        [["clip.set", "t1", "c1", "gain_db", -3]],
        ["set the gain of clip Intro on Bass to -3 dB"],
    ),
    (
        "bob",
        [["clip.set", "t1", "c1", "asset_id", "a2"]],
        ["replaced the audio of clip Intro on Bass"],
    ),
    (
        "alice",
        [["clips.push", "t2", {"id": "c2", "start": 0.5}]],
        ["added clip c2 on Piano at 0.5 s"],
    ),
    ("bob", [["clips.delete", "t1", "c1"]], ["deleted clip Intro on Bass"]),
    ("bob", [["lyrics.append", "hello world!"]], ["typed 12 characters in lyrics"]),
    ("alice", [["lyrics.insert", 5, ","]], ["typed 1 character in lyrics"]),
    ("bob", [["lyrics.delete", 0, 7]], ["deleted 7 characters in lyrics"]),
    ("alice", [["lyrics.delete", 5, 1]], ["deleted 1 character in lyrics"]),
    (
        "bob",
        [["comments.push", {"id": "k1", "text": "louder", "track_id": "t1", "resolved": False}]],
        ["commented on Bass"],
    ),
    (
        "alice",
        [["comments.push", {"id": "k2", "text": "here", "at": 12.5}]],
        ["commented at 12.5 s"],
    ),
    ("bob", [["comment.set", "k1", "resolved", True]], ["resolved a comment"]),
    ("alice", [["comment.set", "k1", "resolved", False]], ["reopened a comment"]),
    ("bob", [["comment.set", "k2", "text", "right here"]], ["edited a comment"]),
    ("alice", [["comments.delete", "k2"]], ["deleted a comment"]),
    (
        "bob",
        [["markers.push", {"id": "m1", "name": "Chorus", "at": 32}]],
        ["added marker Chorus at 32.0 s"],
    ),
    ("alice", [["marker.set", "m1", "name", "Hook"]], ["renamed marker Chorus to marker Hook"]),
    ("bob", [["marker.set", "m1", "at", 36.25]], ["moved marker Hook from 32.0 s to 36.25 s"]),
    ("alice", [["markers.delete", "m1"]], ["deleted marker Hook"]),
    ("bob", [["tracks.delete", "t2"]], ["deleted track Piano"]),
    ("alice", [["tracks.push", {"id": "t3"}]], ["added track 2"]),
    ("bob", [["tracks.delete", "t3"]], ["deleted track 2"]),
    ("alice", [["root.push", "chat", "hi"]], ["changed chat"]),
    (
        "bob",
        [
            ["lyrics.append", " again"],
            ["markers.push", {"id": "m2", "name": "Outro", "at": 90}],
            ["track.set", "t1", "volume_db", 0],
            ["meta.set", "bpm", 90],
        ],
        # One update, several changes: in document order, whatever the order of the ops.
        [
            "set the tempo to 90 BPM",
            "set Bass volume from -6 dB to 0 dB",
            "typed 6 characters in lyrics",
            "added marker Outro at 90.0 s",
        ],
    ),
]


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


async def test_every_kind_of_javascript_edit_reads_as_its_known_sentence(
    server: ServerProcess, js_client: JSClients
) -> None:
    alice, bob, project, owner, editor = await owner_and_member(server, js_client, "bob", "editor")
    clients = {"alice": owner, "bob": editor}
    await take_turns([(clients[w], ops) for w, ops, _ in KNOWN_ANSWERS], [owner, editor])
    async with server.http() as http:
        answer = await http.get(
            f"/api/projects/{project}/history", params={"limit": 200}, headers=alice.headers
        )
    assert answer.status_code == 200
    updates = [e for e in answer.json()["entries"] if e["type"] == "doc.updated"]
    who = {alice.id: "alice", bob.id: "bob"}
    said = [(who[e["user_id"]], e["summary"]) for e in updates]
    assert said == [(w, sentences) for w, _, sentences in KNOWN_ANSWERS]
    assert {c["kind"] for e in updates for c in e["changes"]} == EVERY_KIND
