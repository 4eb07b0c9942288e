"""Server-side writes (`Rooms.write`, `Rooms.edit`, and `POST /api/projects/{id}/updates`) on one
node without Redis, on each log: they take a socket's path (checked, applied, appended, then
broadcast), reach every socket of the project at once whether or not its room was loaded, are
logged with their actor, and leave nothing behind when refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt import document
from domain import document as project_document
from domain import events
from eventstore import StoreUnavailableError
from harness.waiting import eventually
from jacameno.collab import room as room_module
from jacameno.collab.errors import MalformedMessage, MessageTooLarge, RoomUnavailable
from jacameno.collab.room import Actor
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Gate, Server, serving


def titled(title: str) -> bytes:
    """An update of its own Yjs client that sets the project's title."""
    doc: Doc[Any] = Doc()
    doc.get("meta", type=Map)["title"] = title
    return doc.get_update()


async def logged(server: Server, project: str) -> project_document.ProjectDocument:
    updates = [e.data for e in await server.events(project, events.DOC_UPDATED)]
    return project_document.read(document.build(document.EMPTY_UPDATE, updates))


async def test_a_server_write_reaches_every_socket_and_is_logged_with_its_actor(
    server: Server,
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    version = await server.rooms.write(project, titled("Restored"), Actor(alice.id, "restore"))
    assert version is not None
    await eventually(lambda: a.content()["meta"].get("title") == "Restored")
    await eventually(lambda: b.content()["meta"].get("title") == "Restored")
    [event] = await server.events(project, events.DOC_UPDATED)
    assert event.version == version
    assert event.metadata["user_id"] == alice.id
    assert event.metadata["via"] == "restore"
    assert event.metadata["connection_id"] is None
    assert a.content() == b.content() == await logged(server, project)
    # The sockets edit on as before, after the server's write.
    a.doc.get("lyrics", type=Text).insert(0, "after ")
    await eventually(lambda: b.content()["lyrics"] == "after ")
    assert await logged(server, project) == a.content()
    await a.close()
    await b.close()


async def test_a_server_write_loads_a_room_nobody_has_open_and_unloads_it_after(
    server: Server,
) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    assert server.rooms.loaded(project) is None
    version = await server.rooms.write(project, titled("Cold"), Actor(alice.id, "ai"))
    assert version is not None
    [event] = await server.events(project, events.DOC_UPDATED)
    assert event.version == version
    assert event.metadata["via"] == "ai"
    await eventually(lambda: server.rooms.loaded(project) is None)  # unload_delay is 0.2 s
    client = await server.client(project, alice)
    await client.sync()
    assert client.content()["meta"]["title"] == "Cold"
    await client.close()


async def test_a_server_edit_is_made_on_a_copy_and_broadcast_like_any_edit(
    server: Server,
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    a.doc.get("lyrics", type=Text).insert(0, "verse")
    await eventually(lambda: b.content()["lyrics"] == "verse")

    def chorus(doc: Doc[Any]) -> None:
        doc.get("lyrics", type=Text).insert(5, " chorus")

    def broken(doc: Doc[Any]) -> None:
        doc.get("lyrics", type=Text).insert(0, "half-done ")
        raise ValueError("the change failed half-way")

    actor = Actor(alice.id, "ai")
    assert await server.rooms.edit(project, chorus, actor) is not None
    await eventually(lambda: a.content()["lyrics"] == b.content()["lyrics"] == "verse chorus")
    with pytest.raises(ValueError, match="half-way"):
        await server.rooms.edit(project, broken, actor)
    assert await server.rooms.edit(project, lambda doc: None, actor) is None  # no change
    room = server.rooms.loaded(project)
    assert room is not None
    assert project_document.read(room.doc)["lyrics"] == "verse chorus"
    assert await logged(server, project) == a.content() == b.content()
    assert len(await server.events(project, events.DOC_UPDATED)) == 2
    await a.close()
    await b.close()


async def test_a_malformed_server_write_is_refused_and_the_room_goes_on(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    for bad in (b"\x01", b"\x00\x00\x00", titled("x")[:-3]):
        with pytest.raises(MalformedMessage):
            await server.rooms.write(project, bad, Actor(alice.id, "api"))
    assert a.close_code is None
    assert b.close_code is None
    assert await server.events(project, events.DOC_UPDATED) == []
    await server.assert_unharmed(project, a)
    await b.close()


async def test_a_server_edit_larger_than_an_update_may_be_is_refused_and_the_room_goes_on(
    server: Server,
) -> None:
    # A restore that puts back a long array whole makes a large edit: refused before it is
    # applied, as a socket's update would be, never applied and then refused by the log (which
    # would drop the room and every socket in it).
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    limit = server.rooms.config.max_message_bytes
    large = titled("x" * (limit + 1))
    with pytest.raises(MessageTooLarge, match="an update may be at most"):
        await server.rooms.write(project, large, Actor(alice.id, "restore"))

    def grow(doc: Doc[Any]) -> None:
        doc.get("lyrics", type=Text).insert(0, "y" * (limit + 1))

    with pytest.raises(MessageTooLarge):
        await server.rooms.edit(project, grow, Actor(alice.id, "restore"))
    assert a.close_code is None
    assert b.close_code is None
    assert await server.events(project, events.DOC_UPDATED) == []
    await server.assert_unharmed(project, a)
    await b.close()


async def test_a_server_edit_larger_than_an_update_may_be_is_written_in_parts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restore that puts back thousands of tracks: updates of at most the limit, each
    # logged with its place among the parts and broadcast; the sockets end where the log does.
    # Deleting them all again: parts that delete at most DELETED_PER_UPDATE clocks each.
    monkeypatch.setattr(room_module, "DELETED_PER_UPDATE", 2_000)
    limit = 64 * 1024
    async with serving(settings, CollabConfig(unload_delay=0.2, max_message_bytes=limit)) as server:
        alice, _bob, project, a, b = await server.owner_and_member("editor")

        def add(doc: Doc[Any]) -> None:
            tracks = doc.get("tracks", type=Array)
            with doc.transaction():
                for n in range(2_000):
                    tracks.append(Map({"id": f"t{n}", "name": f"track {n} " + "x" * 40}))

        restores = {"restores": {"version": 1, "path": None}}
        version = await server.rooms.edit(project, add, Actor(alice.id, "restore", restores))
        written = await server.events(project, events.DOC_UPDATED)
        assert len(written) > 1
        assert version == written[-1].version
        for n, event in enumerate(written, 1):
            assert len(event.data) <= limit
            assert event.metadata["part"] == n
            assert event.metadata["parts"] == len(written)
            assert event.metadata["restores"] == {"version": 1, "path": None}
            assert event.metadata["user_id"] == alice.id
        expected = await logged(server, project)
        assert len(expected["tracks"]) == 2_000
        await eventually(lambda: a.content() == b.content() == expected)

        def remove(doc: Doc[Any]) -> None:
            tracks = doc.get("tracks", type=Array)
            del tracks[0 : len(tracks)]

        before = len(await server.events(project, events.DOC_UPDATED))
        assert await server.rooms.edit(project, remove, Actor(alice.id, "restore"))
        deleting = (await server.events(project, events.DOC_UPDATED))[before:]
        assert len(deleting) > 1
        assert (await logged(server, project))["tracks"] == []
        await eventually(lambda: a.content()["tracks"] == b.content()["tracks"] == [])
        await a.close()
        await b.close()


async def test_a_server_write_under_way_when_the_log_fails_is_told_so(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    room = server.rooms.loaded(project)
    assert room is not None
    room.writer.store = gate = Gate(server.store, fail_with=StoreUnavailableError("down"))
    gate.opened.set()
    with pytest.raises(RoomUnavailable):
        await server.rooms.write(project, titled("Lost"), Actor(alice.id, "restore"))
    assert await a.wait_closed() == 1013
    assert await b.wait_closed() == 1013
    assert await server.events(project, events.DOC_UPDATED) == []
    # The next write loads the room again from the log.
    assert await server.rooms.write(project, titled("Kept"), Actor(alice.id, "restore"))
    assert (await logged(server, project))["meta"]["title"] == "Kept"


async def test_updates_over_http_reach_the_sockets_as_the_callers_edits(server: Server) -> None:
    alice, bob, project, a, b = await server.owner_and_member("viewer")
    carol = await server.user("carol")
    url = f"/api/projects/{project}/updates"
    binary = {"Content-Type": "application/octet-stream"}

    def auth(user: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {user.token}", **binary}

    response = await server.http.post(url, content=titled("By HTTP"), headers=auth(alice))
    assert response.status_code == 200, response.text
    version = response.json()["version"]
    assert response.json() == {"version": version, "changed": True}
    await eventually(lambda: b.content()["meta"].get("title") == "By HTTP")
    [event] = await server.events(project, events.DOC_UPDATED)
    assert (event.version, event.metadata["user_id"], event.metadata["via"]) == (
        version,
        alice.id,
        "api",
    )
    # The same update again changes nothing and logs nothing.
    update = (await server.events(project, events.DOC_UPDATED))[0].data
    again = await server.http.post(url, content=update, headers=auth(alice))
    assert again.status_code == 200
    assert again.json() == {"version": None, "changed": False}
    refused = {
        "viewer": (await server.http.post(url, content=titled("v"), headers=auth(bob)), 403),
        "stranger": (await server.http.post(url, content=titled("s"), headers=auth(carol)), 404),
        "no token": (await server.http.post(url, content=titled("n"), headers=binary), 401),
        "json": (
            await server.http.post(
                url, content=b"{}", headers={**auth(alice), "Content-Type": "application/json"}
            ),
            415,
        ),
        "garbage": (await server.http.post(url, content=b"\x05\x05", headers=auth(alice)), 400),
    }
    for case, (answer, status) in refused.items():
        assert answer.status_code == status, (case, answer.text)
        assert "error" in answer.json(), case
    assert refused["garbage"][0].json()["error"]["code"] == "malformed_update"
    assert a.close_code is None
    assert b.close_code is None
    assert len(await server.events(project, events.DOC_UPDATED)) == 1
    assert await logged(server, project) == a.content() == b.content()
    await a.close()
    await b.close()


async def test_server_writes_and_socket_edits_interleave_and_converge_with_the_log(
    server: Server,
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    actor = Actor(alice.id, "ai")

    def mark(n: int) -> Any:
        def change(doc: Doc[Any]) -> None:
            doc.get("meta", type=Map)[f"server-{n}"] = n

        return change

    writes = [asyncio.create_task(server.rooms.edit(project, mark(n), actor)) for n in range(30)]
    for n in range(30):
        (a if n % 2 else b).doc.get("lyrics", type=Text).insert(0, f"{n} ")
        await asyncio.sleep(0)
    versions = await asyncio.gather(*writes)
    assert len(set(versions)) == 30
    assert None not in versions
    await eventually(lambda: set(a.sent) <= set(a.echoes) and set(b.sent) <= set(b.echoes))
    expected = await logged(server, project)
    await eventually(lambda: a.content() == b.content() == expected)
    assert all(expected["meta"][f"server-{n}"] == n for n in range(30))
    await a.close()
    await b.close()
