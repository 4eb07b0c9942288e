"""The JavaScript Yjs client (yjs 13.6 + y-websocket's WebsocketProvider on Node) against a real
`jacameno serve`, on SQLite and on Postgres: concurrent editors converge, also across an offline
period; a Python client (pycrdt) in the same room converges with them; what they converge to is
exactly the document the log alone rebuilds; and a viewer's edits never leave the viewer."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Map, Text

from harness.server import ServerProcess
from harness.waiting import eventually, wait_until
from tests.e2e import documents
from tests.e2e.clients import (
    converged,
    edit_every_root,
    owner_and_member,
    python_client,
    python_settled,
)
from tests.e2e.conftest import JSClients


async def test_js_and_python_clients_converge_to_the_logged_document(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, bob, carol, dave = await asyncio.gather(
        server.user("alice"), server.user("bob"), server.user("carol"), server.user("dave")
    )
    project = await server.project(alice, (bob, "editor"), (carol, "editor"), (dave, "editor"))
    owner, editor, offline = await asyncio.gather(
        js_client("alice"), js_client("bob"), js_client("carol")
    )
    await asyncio.gather(
        owner.connect(server.ws_url, project, alice.token),
        editor.connect(server.ws_url, project, bob.token),
        offline.connect(server.ws_url, project, carol.token),
    )
    await asyncio.gather(owner.wait_synced(), editor.wait_synced(), offline.wait_synced())
    python = await python_client(server, project, dave.token)
    js = [owner, editor, offline]

    # Round 1: everyone edits Map, Array and Text at once, with conflicting writes.
    await edit_every_root(js, python)

    # Round 2: carol goes offline and edits; the others edit the same things meanwhile.
    await offline.disconnect()
    await offline.edit(
        ["track.set", "t-alice", "muted", True],
        ["clips.push", "t-bob", {"id": "c-1", "asset_id": "a-1", "start": 0, "length": 4.5}],
        ["lyrics.insert", 0, "(offline) "],
        ["meta.set", "title", "Night Drive (carol)"],
    )
    await asyncio.gather(
        owner.edit(["lyrics.delete", 0, 3], ["track.set", "t-bob", "volume_db", -12]),
        editor.edit(["tracks.delete", "t-dave"], ["meta.set", "title", "Night Ride"]),
    )
    with python.doc.transaction():
        python.doc.get("lyrics", type=Text).insert(0, "dave ")
    await asyncio.gather(owner.wait_settled(), editor.wait_settled(), python_settled(python))
    assert (await offline.state()).unacked == 0  # nothing was sent while offline
    await offline.connect(server.ws_url, project, carol.token)
    await asyncio.gather(*(c.wait_settled() for c in js), python_settled(python))
    final = await converged(js, [python])

    assert "(offline) " in final["lyrics"]
    assert "dave " in final["lyrics"]
    by_id = {t["id"]: t for t in final["tracks"]}
    assert set(by_id) == {"t-alice", "t-bob", "t-carol"}
    assert by_id["t-alice"]["muted"] is True
    assert by_id["t-bob"]["volume_db"] == -12.0
    assert by_id["t-bob"]["clips"] == [
        {"id": "c-1", "asset_id": "a-1", "start": 0.0, "length": 4.5}
    ]

    logged = await documents.logged_updates(database_url, project)
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == final
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id, bob.id, carol.id, dave.id}
    await python.close()


async def test_viewer_edits_never_reach_the_log_or_the_others(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, victor, project, owner, viewer = await owner_and_member(
        server, js_client, "victor", "viewer"
    )

    await owner.edit(["lyrics.append", "owner line\n"], ["meta.set", "bpm", 90])
    await viewer.edit(
        ["lyrics.insert", 0, "VIEWER"],
        ["meta.set", "bpm", 1],
        ["tracks.push", {"id": "t-viewer", "name": "Not mine"}],
    )
    denied = await viewer.wait_event(lambda e: e["event"] == "permission-denied")
    assert "viewer" in denied["reason"]
    # Sent after the viewer's edit was refused: once it is echoed, anything the server had
    # broadcast of the viewer's edit would have reached the owner first.
    await owner.edit(["lyrics.append", "after the refusal\n"])
    await owner.wait_settled()

    async def viewer_sees_the_owner() -> bool:
        return "after the refusal" in (await viewer.state()).json["lyrics"]

    await wait_until(viewer_sees_the_owner, "the viewer receives the owner's edit")

    # Reconnecting makes the provider resend its edit in sync step 2: refused again.
    await viewer.disconnect()
    await viewer.connect(server.ws_url, project, victor.token)
    await viewer.wait_synced()
    await eventually(lambda: sum(e["event"] == "permission-denied" for e in viewer.events) >= 2)
    assert not [e for e in viewer.events if e["event"] == "closed"]

    owner_doc = documents.from_json((await owner.state()).json)
    assert owner_doc == {
        "meta": {"bpm": 90.0},
        "tracks": [],
        "lyrics": "owner line\nafter the refusal\n",
    }
    logged = await documents.logged_updates(database_url, project)
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id}
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == owner_doc
    late = await js_client("late")
    await late.connect(server.ws_url, project, alice.token)
    await late.wait_synced()
    assert documents.from_json((await late.state()).json) == owner_doc


@pytest.mark.parametrize("other_type_first", [True, False], ids=["typed-later", "typed-first"])
async def test_typing_inside_a_js_clients_character_before_its_other_type_is_refused(
    server: ServerProcess, js_client: JSClients, database_url: str, other_type_first: bool
) -> None:
    """pycrdt typing inside a two-byte character a Yjs client typed, right before that client's
    next item (a key of the meta map) names that item as its right origin. Without the check the
    writer and the JavaScript client showed the lyrics "00\x80 a\n!" and a document rebuilt from
    the log "!": the log (and every read model) and the clients would disagree for good. The
    room refuses the update, and what the JavaScript client shows is what the log rebuilds. Typed
    before that client's next item exists, pycrdt names the clock that item will take, which the
    room refuses as well (the item would wait, and then sit in the meta map)."""
    alice, bob = await asyncio.gather(server.user("alice"), server.user("bob"))
    project = await server.project(alice, (bob, "editor"))
    js = await js_client("alice")
    await js.connect(server.ws_url, project, alice.token)
    await js.wait_synced()
    python = await python_client(server, project, bob.token)
    await js.edit(["lyrics.insert", 0, "00\x80 "])  # U+0080: two bytes in UTF-8
    if other_type_first:
        await js.edit(["meta.set", "title", "Night Drive"])
    await js.wait_settled()
    await eventually(lambda: str(python.doc.get("lyrics", type=Text)) == "00\x80 ")
    if other_type_first:
        await eventually(lambda: python.doc.get("meta", type=Map).get("title") == "Night Drive")
    python.doc.get("lyrics", type=Text).insert(3, "a\n")  # pycrdt counts bytes: inside U+0080
    assert await python.wait_closed() == 4400
    expected = "two different types" if other_type_first else "which no one has written"
    assert expected in python.close_reason
    if not other_type_first:
        await js.edit(["meta.set", "title", "Night Drive"])
    await js.edit(["lyrics.append", "!"])
    await js.wait_settled()
    shown = documents.from_json((await js.state()).json)
    assert shown["lyrics"] == "00\x80 !"
    logged = await documents.logged_updates(database_url, project)
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == shown
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id}
