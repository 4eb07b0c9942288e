"""Restore (`POST /api/projects/{id}/restore`) on a real server, on SQLite and Postgres: one edit
through the live room that gives the document a version's content, seen by every connected client
at once, logged as a `doc.updated` (via "restore") and a `doc.restored` naming the version and
who; the log keeps growing and later edits merge. Owners and editors only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from pycrdt import Array, Map, Text

from crdt import compare, document
from domain import document as project_document
from domain import events
from harness.accounts import User, expect
from harness.settings import app_settings
from harness.waiting import eventually, wait_until
from jacameno.documents.verify import verify_project
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.edits import Edit, edit, edits
from tests.hypothesis_profiles import examples
from tests.integration.collab.support import Server, YClient, serving


def restore(server: Server, user: User, project: str, **body: Any) -> Any:
    return server.http.post(f"/api/projects/{project}/restore", json=body, headers=user.headers)


async def content_at(server: Server, project: str, version: int) -> Any:
    """The document at `version`, folded from the log alone."""
    logged = await server.store.read_stream(events.stream_name(project), 1, to_version=version)
    updates = [e.data for e in logged if e.type == events.DOC_UPDATED]
    return project_document.read(document.build(document.EMPTY_UPDATE, updates))


async def settled(server: Server, project: str, clients: list[YClient]) -> None:
    """Wait until every client has all that every other sent, and the log has it all."""

    async def check() -> bool:
        logged = await server.events(project, events.DOC_UPDATED)
        folded = document.build(document.EMPTY_UPDATE, [e.data for e in logged])
        state = compare.state_vector(folded)
        return all(compare.state_vector(c.doc) == state for c in clients)

    await wait_until(check, "the clients and the log have the same state")


async def head(server: Server, project: str) -> int:
    return await server.store.stream_version(events.stream_name(project))


async def test_a_restore_reaches_every_connected_client_and_is_named_in_the_log(
    server: Server,
) -> None:
    _alice, bob, project, a, b = await server.owner_and_member("editor")
    a.doc.get("lyrics", type=Text).insert(0, "first verse")
    a.doc.get("meta", type=Map)["title"] = "Demo"
    await eventually(lambda: b.content()["lyrics"] == "first verse")
    await eventually(lambda: len(a.echoes) == 2)
    version = await head(server, project)
    b.doc.get("lyrics", type=Text).insert(0, "OOPS ")
    b.doc.get("tracks", type=Array).append(Map({"id": "t1", "name": "Noise"}))
    await eventually(lambda: len(b.echoes) == 4)  # alice's two, and its own two

    response = expect(await restore(server, bob, project, version=version), 200).json()
    assert response["version"] == version
    assert response["path"] is None
    assert response["changed"] is True
    wanted = await content_at(server, project, version)
    await eventually(lambda: a.content() == b.content() == wanted)
    logged = await server.events(project)
    update, restored = logged[-2:]
    assert update.type == events.DOC_UPDATED
    assert update.version == response["update_version"]
    assert update.metadata["via"] == "restore"
    assert update.metadata["user_id"] == bob.id
    assert update.metadata["restores"] == {"version": version, "path": None}  # in one append
    assert restored.type == events.DOC_RESTORED
    assert restored.version == response["event_version"]
    assert restored.metadata["user_id"] == bob.id
    assert events.decode(restored.data) == {
        "version": version,
        "path": None,
        "update_version": update.version,
    }
    # Edits go on after it and merge.
    a.doc.get("lyrics", type=Text).insert(0, "new ")
    await eventually(lambda: b.content()["lyrics"] == "new first verse")
    assert await content_at(server, project, await head(server, project)) == b.content()
    await a.close()
    await b.close()


async def test_a_part_is_restored_and_the_rest_keeps_its_later_edits(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    tracks = a.doc.get("tracks", type=Array)
    tracks.append(Map({"id": "t1", "name": "Drums", "volume_db": 0.0}))
    tracks.append(Map({"id": "t2", "name": "Bass", "volume_db": 0.0}))
    await eventually(lambda: len(a.echoes) == 2)
    version = await head(server, project)
    tracks[0]["volume_db"] = -12.0
    tracks[1]["volume_db"] = -3.0
    a.doc.get("lyrics", type=Text).insert(0, "kept")
    await eventually(lambda: len(a.echoes) == 5)

    response = await restore(server, alice, project, version=version, path="tracks/t1")
    assert expect(response, 200).json()["path"] == "tracks/t1"

    def restored() -> bool:
        volumes = [t["volume_db"] for t in b.content()["tracks"]]
        return volumes == [0.0, -3.0] and b.content()["lyrics"] == "kept"

    await eventually(restored)
    [event] = await server.events(project, events.DOC_RESTORED)
    assert events.decode(event.data)["path"] == "tracks/t1"
    # The same again changes nothing: no update, but the request is still named.
    again = expect(await restore(server, alice, project, version=version, path="tracks/t1"), 200)
    assert again.json()["changed"] is False
    assert again.json()["update_version"] is None
    assert len(await server.events(project, events.DOC_RESTORED)) == 2
    await a.close()
    await b.close()


async def test_only_members_who_may_write_restore_and_only_versions_that_exist(
    server: Server,
) -> None:
    alice, viewer = await server.user("alice"), await server.user("viewer")
    stranger = await server.user("stranger")
    project = await server.project(alice, (viewer, "viewer"))
    top = await head(server, project)
    response = await restore(server, viewer, project, version=0)
    assert response.status_code == 403
    assert (await restore(server, stranger, project, version=0)).status_code == 404
    for version in (top + 1, -1):
        response = await restore(server, alice, project, version=version)
        assert response.status_code == 400
        assert f"not between 0 and the head, {top}" in response.json()["error"]["message"]
    response = await restore(server, alice, project, version=0, path="mixer")
    assert response.status_code == 400
    assert "no such part of the document" in response.json()["error"]["message"]
    assert (await restore(server, alice, project, path="lyrics")).status_code == 422
    assert (await restore(server, alice, project, version="1")).status_code == 422
    assert await server.events(project, events.DOC_UPDATED) == []
    assert await server.events(project, events.DOC_RESTORED) == []
    assert expect(await restore(server, alice, project, version=0), 200).json()["changed"] is False


@pytest.fixture
async def two_nodes(
    tmp_path: Path, fresh_pg_url: str, redis_url: str
) -> AsyncIterator[tuple[Server, Server]]:
    """Two servers on one Postgres and one Redis; the periodic log check is off, so what
    reaches the other node came over the bus."""
    settings = replace(app_settings(tmp_path, fresh_pg_url), redis_url=redis_url)
    config = CollabConfig(unload_delay=0.2, log_check_interval=600.0)
    async with serving(settings, config) as one, serving(settings, config) as other:
        yield one, other


async def test_a_restore_through_a_node_without_the_room_reaches_the_clients_of_another(
    two_nodes: tuple[Server, Server],
) -> None:
    one, other = two_nodes
    alice, bob = await one.user("alice"), await one.user("bob")
    project = await one.project(alice, (bob, "editor"))
    a, b = await one.client(project, alice), await one.client(project, bob)
    await a.sync()
    await b.sync()
    a.doc.get("lyrics", type=Text).insert(0, "verse")
    await eventually(lambda: b.content()["lyrics"] == "verse")
    version = await head(one, project)
    b.doc.get("lyrics", type=Text).insert(0, "oops ")
    await eventually(lambda: a.content()["lyrics"] == "oops verse")
    await eventually(lambda: len(b.echoes) == 2)
    assert other.rooms.loaded(project) is None
    expect(await restore(other, bob, project, version=version), 200)
    await eventually(lambda: a.content()["lyrics"] == b.content()["lyrics"] == "verse")
    [event] = await one.events(project, events.DOC_RESTORED)
    assert events.decode(event.data)["version"] == version
    await a.close()
    await b.close()


# -- the property: restore to any version, on a server that lives across the examples ----------


class Studio:
    """One server for all of Hypothesis's examples, in one event loop (asyncio.Runner), and in
    each example a new project edited by three clients of two users."""

    def __init__(self, runner: asyncio.Runner, server: Server, alice: User, bob: User) -> None:
        self.runner = runner
        self.server = server
        self.alice = alice
        self.bob = bob

    async def example(self, history: list[tuple[int, Edit]], pick: int) -> None:
        server = self.server
        project = await server.project(self.alice, (self.bob, "editor"))
        clients = [await server.client(project, user) for user in (self.alice, self.bob, self.bob)]
        for client in clients:
            await client.sync()
        try:
            for who, change in history:  # sent at once: concurrent edits of three clients
                edit(clients[who].doc, change)
            await settled(server, project, clients)
            top = await head(server, project)
            version = pick % (top + 1)
            wanted = await content_at(server, project, version)
            expect(await restore(server, self.bob, project, version=version), 200)
            await settled(server, project, clients)  # the same state: then compare
            assert all(c.content() == wanted for c in clients)
            assert await content_at(server, project, await head(server, project)) == wanted
            # Edits after the restore merge on every client and in the log.
            clients[0].doc.get("lyrics", type=Text).insert(0, "Z")
            clients[2].doc.get("meta", type=Map)["after"] = "restore"
            await settled(server, project, clients)
            latest = await content_at(server, project, await head(server, project))
            assert latest == clients[1].content()
            assert latest["lyrics"].startswith("Z")
            assert latest["meta"]["after"] == "restore"
            # The snapshots the room took on the way agree with the log.
            report = await verify_project(server.store, project)
            assert report.ok, report.problems
        finally:
            for client in clients:
                await client.close()


@contextlib.contextmanager
def studio(settings: Settings) -> Iterator[Studio]:
    with asyncio.Runner() as runner:
        config = CollabConfig(unload_delay=0.2, snapshot_every_updates=5)  # snapshots on the way
        serving_server = serving(settings, config)
        server = runner.run(serving_server.__aenter__())
        try:
            alice = runner.run(server.user("alice"))
            bob = runner.run(server.user("bob"))
            yield Studio(runner, server, alice, bob)
        finally:
            runner.run(serving_server.__aexit__(None, None, None))


def test_a_restore_to_a_random_version_gives_every_client_its_content(
    settings: Settings,
) -> None:
    with studio(settings) as running:

        @hypothesis.settings(
            max_examples=examples(25),
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(st.lists(st.tuples(st.integers(0, 2), edits), max_size=14), st.integers(0, 10**6))
        def check(history: list[tuple[int, Edit]], pick: int) -> None:
            running.runner.run(running.example(history, pick))

        check()
