"""`jacameno projections run` beside a `jacameno serve` with `JACAMENO_PROJECTIONS=standby`, on
one Postgres and one Redis: the server folds nothing itself, yet every read-your-writes answer
(creating and inviting into a project, listing projects) and every read model (the projects, the
document's tracks) is right, because the server waits on the checkpoints the projection process
writes. Killed, the projection process leaves the sockets served; started again, it catches up
from its checkpoints; stopped with SIGTERM, it exits cleanly. A server left at `run` beside it
stands by too, and takes the projections over when the process dies."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Array, Map, Text

from domain.events import jobs as job_events
from domain.events import stream_name
from harness.accounts import User
from harness.databases import open_store
from harness.projecting import STANDBY, ProjectionProcess
from harness.server import ServerProcess
from harness.waiting import eventually, wait_until
from tests.e2e.clients import python_client, python_settled

Deployment = tuple[ProjectionProcess, ServerProcess]


@contextlib.asynccontextmanager
async def deployed(
    database_url: str, redis_url: str, tmp_path: Path, projections: str
) -> AsyncIterator[Deployment]:
    """A projection process, then a server with JACAMENO_PROJECTIONS=`projections` started
    after it."""
    server = ServerProcess(
        database_url,
        tmp_path / "data",
        "e2e-" + uuid.uuid4().hex,
        tmp_path / "server.log",
        {"JACAMENO_REDIS_URL": redis_url, "JACAMENO_PROJECTIONS": projections},
    )
    projecting = ProjectionProcess(server.environment, tmp_path / "projections.log")
    try:
        await projecting.start()
        await server.start()
        yield projecting, server
    finally:
        await server.stop()
        await projecting.stop()
        print(f"--- server log ---\n{server.log_tail()}")
        print(f"--- projections log ---\n{projecting.log_tail()}")


@pytest.fixture
async def deployment(
    fresh_pg_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[Deployment]:
    """A projection process, then a standby server started after it."""
    async with deployed(fresh_pg_url, redis_url, tmp_path, STANDBY["JACAMENO_PROJECTIONS"]) as both:
        yield both


async def tracks(server: ServerProcess, user: User, project: str) -> list[str]:
    """The track names the `document` read model shows."""
    async with server.http() as http:
        response = await http.get(f"/api/projects/{project}/tracks", headers=user.headers)
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()["tracks"]]


def add_track(doc: Any, name: str) -> None:
    doc.get("tracks", type=Array).append(Map({"id": f"t-{name}", "name": name, "kind": "audio"}))


async def active_projections(server: ServerProcess) -> dict[str, float]:
    """`jacameno_projection_active` per projection, from the server's /metrics."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        if line.startswith("jacameno_projection_active{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('projection="')[1].split('"')[0]] = float(value)
    return found


async def test_a_standby_server_serves_everything_while_a_process_of_its_own_projects(
    deployment: Deployment,
) -> None:
    projecting, server = deployment
    alice, bob = await asyncio.gather(server.user("alice"), server.user("bob"))
    # Creating a project and inviting answer once the projects read model has them: the
    # server waits on the checkpoints the other process writes.
    project = await server.project(alice, (bob, "editor"))
    async with server.http() as http:
        listed = (await http.get("/api/projects", headers=bob.headers)).json()["projects"]
    assert [p["id"] for p in listed] == [project]
    active = await active_projections(server)
    assert set(active) == set(projecting.projections())
    assert not any(active.values()), "the standby server runs no projection"

    a = await python_client(server, project, alice.token)
    b = await python_client(server, project, bob.token)
    add_track(a.doc, "drums")
    await python_settled(a)
    await wait_until(lambda: _names(b) == ["drums"], "bob sees the drums")
    await wait_until(
        lambda: _shows(server, alice, project, ["drums"]), "the document read model has them"
    )

    # The projection process dies: collaboration goes on, the read models wait.
    await projecting.kill()
    b.doc.get("lyrics", type=Text).insert(0, "night drive")
    add_track(b.doc, "bass")
    await python_settled(b)
    await eventually(lambda: str(a.doc.get("lyrics", type=Text)) == "night drive")
    assert await tracks(server, alice, project) == ["drums"]
    # A command that waits for a read model gives up once nothing has moved for 5 s; its change
    # is in the log.
    async with server.http() as http:
        renamed = await http.patch(
            f"/api/projects/{project}", json={"title": "Night drive"}, headers=alice.headers
        )
    assert renamed.status_code == 503, renamed.text

    # Started again, it catches up from its checkpoints.
    await projecting.start()
    await wait_until(
        lambda: _shows(server, alice, project, ["drums", "bass"]), "the read model catches up"
    )
    async with server.http() as http:
        shown = (await http.get(f"/api/projects/{project}", headers=bob.headers)).json()
    assert shown["title"] == "Night drive"
    await asyncio.gather(a.close(), b.close())

    assert await projecting.stop() == 0
    assert projecting.actions()[-1] == "projections.stopped"


async def test_an_ai_analysis_reaches_the_standby_servers_sockets_through_redis(
    deployment: Deployment,
) -> None:
    """The projection process writes the analysis into the document through a room of its own;
    the serving node's room gets it over Redis and its sockets see it."""
    projecting, server = deployment
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await python_client(server, project, alice.token)
    asset = str(uuid.uuid4())
    clips = Array([Map({"id": "c1", "asset_id": asset})])
    client.doc.get("tracks", type=Array).append(Map({"id": "t1", "name": "drums", "clips": clips}))
    await python_settled(client)
    result = {"tempo": {"bpm": 121.0, "confidence": 0.9}}
    event = job_events.job_completed("analysis", "job-1", attempt=1, asset_id=asset, result=result)
    store = await open_store(projecting.environment["JACAMENO_DATABASE_URL"])
    try:
        await store.append(stream_name(project), [event])
    finally:
        await store.close()

    def tempo() -> object:
        track = client.doc.get("tracks", type=Array).to_py()[0]
        return (track.get("analysis") or {}).get("tempo_bpm")

    await eventually(lambda: tempo() == 121.0)
    await client.close()


async def test_a_server_left_at_run_stands_by_beside_the_process_and_takes_over_at_its_death(
    fresh_pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with deployed(fresh_pg_url, redis_url, tmp_path, "run") as (projecting, server):
        alice = await server.user("alice")
        project = await server.project(alice)
        active = await active_projections(server)
        assert set(active) == set(projecting.projections())
        assert not any(active.values()), "the server stands by for each projection"
        client = await python_client(server, project, alice.token)
        add_track(client.doc, "drums")
        await python_settled(client)
        await wait_until(lambda: _shows(server, alice, project, ["drums"]), "the read model")

        await projecting.kill()

        async def leading() -> bool:
            active = await active_projections(server)
            return bool(active) and all(active.values())

        await wait_until(leading, "the server leads every projection", timeout=15)
        add_track(client.doc, "bass")
        await python_settled(client)
        await wait_until(
            lambda: _shows(server, alice, project, ["drums", "bass"]), "the server folds"
        )
        await client.close()


def _names(client: Any) -> list[str]:
    return [str(t.get("name")) for t in client.doc.get("tracks", type=Array)]


async def _shows(server: ServerProcess, user: User, project: str, names: list[str]) -> bool:
    return await tracks(server, user, project) == names
