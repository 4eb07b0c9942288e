"""AI jobs end to end: a real `jacameno serve` and real `jacameno worker` processes on one
database (SQLite, or Postgres + Redis), audio synthesized here with known answers. An upload's
analysis is found by a worker and reaches a connected JavaScript Yjs client's document live; a
worker killed mid-job leaves the job to another, which records the one result; a cancelled job
stops; a job that cannot succeed fails with its error; the SSE feed tells it all as it is logged.

A test holds a job mid-run by stopping the worker's task process (harness.worker's `holding`):
a few seconds of audio then stay "running" as long as the test needs, while the worker around
the held process renews, sees a cancel, drains, runs out of time or is killed as it would during
a long analysis."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from domain.events import jobs as job_events
from domain.events import stream_name
from harness.accounts import User
from harness.databases import migrated_sqlite, open_store, postgres_database
from harness.server import ServerProcess, serving
from harness.waiting import wait_until
from harness.worker import WorkerProcess, is_gone
from jacameno.ai import audio, testsignals
from tests.e2e.conftest import JSClients

JOB_TIME = 60.0  # seconds a job of a few seconds of audio may take on a loaded two-core machine
SHARED_LEASE = "3"  # the shared worker renews every second: it sees a cancel within one


def click_track(bpm: float, seconds: float) -> bytes:
    rhythm = testsignals.clicks(bpm, seconds)
    out = io.BytesIO()
    audio.write(out, rhythm.samples, rhythm.sample_rate, subtype="PCM_16")
    return out.getvalue()


def silence(seconds: float) -> bytes:
    out = io.BytesIO()
    audio.write(out, [[0.0] * int(8000 * seconds)], 8000, subtype="PCM_16")
    return out.getvalue()


class Workers:
    def __init__(self, server: ServerProcess, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.started: list[WorkerProcess] = []

    async def start(self, **settings: str) -> WorkerProcess:
        """A worker with these JACAMENO_AI_* settings, ready to claim (its task process warm).
        It looks at an empty table every tenth of a second: a job queued after it is ready is
        claimed at once."""
        settings = {"poll_interval": "0.1", **settings}
        environment = {f"JACAMENO_AI_{k.upper()}": v for k, v in settings.items()}
        worker = WorkerProcess(
            self.server, self.folder / f"worker-{len(self.started)}.log", environment
        )
        self.started.append(worker)
        await worker.start()
        return worker

    async def stop(self) -> None:
        for worker in self.started:
            await worker.stop()
            print(f"--- {worker.log.name} ---\n{worker.log_tail()}")


@dataclass(frozen=True)
class Site:
    """A server on its own database and the one warm worker beside it."""

    server: ServerProcess
    worker: WorkerProcess


@contextlib.asynccontextmanager
async def site(database: str, folder: Path, environment: dict[str, str]) -> AsyncIterator[Site]:
    async with serving(database, folder, environment) as server:
        workers = Workers(server, folder)
        try:
            yield Site(server, await workers.start(lease=SHARED_LEASE))
        finally:
            await workers.stop()


# The tests that need a worker but not its death share one server and one warm worker per kind
# of database, made once for the module: each test works in a project of its own and waits until
# its jobs ended. The tests that kill, drain or time out a worker start their own server, on a
# fresh database, so that no other worker races theirs (SQLite takes one worker per database).


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    folder = tmp_path_factory.mktemp("ai-sqlite")
    async with site(f"sqlite:///{migrated_sqlite(folder)}", folder, {}) as made:
        yield made


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_site(
    postgres_url: str, pg_template: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    folder = tmp_path_factory.mktemp("ai-postgres")
    async with (
        postgres_database(postgres_url, template=pg_template) as database,
        site(database, folder, {"JACAMENO_REDIS_URL": redis_url}) as made,
    ):
        yield made


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest) -> Site:
    made: Site = request.getfixturevalue(f"{request.param}_site")
    assert made.worker.process is not None
    assert made.worker.process.returncode is None, f"it exited:\n{made.worker.log_tail()}"
    return made


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("fresh_sqlite_path")
        return f"sqlite:///{path}", {}
    database: str = request.getfixturevalue("fresh_pg_url")
    return database, {"JACAMENO_REDIS_URL": request.getfixturevalue("redis_url")}


@pytest.fixture
async def server(setup: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[ServerProcess]:
    database, environment = setup
    async with serving(database, tmp_path, environment) as process:
        yield process


@pytest.fixture
async def workers(server: ServerProcess, tmp_path: Path) -> AsyncIterator[Workers]:
    made = Workers(server, tmp_path)
    try:
        yield made
    finally:
        await made.stop()


def _auth(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


async def upload(server: ServerProcess, user: User, project: str, body: bytes) -> str:
    async with server.http(timeout=30) as http:
        answer = await http.post(
            f"/api/projects/{project}/assets",
            params={"name": "clicks.wav"},
            content=body,
            headers={**_auth(user), "Content-Type": "application/octet-stream"},
        )
    assert answer.status_code == 201, answer.text
    asset: str = answer.json()["id"]
    return asset


async def job(server: ServerProcess, user: User, job_id: str) -> dict[str, Any]:
    async with server.http() as http:
        answer = await http.get(f"/api/jobs/{job_id}", headers=_auth(user))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def until_state(
    server: ServerProcess, user: User, job_id: str, *states: str, timeout: float = JOB_TIME
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def reached() -> bool:
        last.update(await job(server, user, job_id))
        return bool(last["state"] in states)

    await wait_until(reached, f"the job is {' or '.join(states)}", timeout)
    return last


async def _events(server: ServerProcess, project: str, kind: str) -> list[Any]:
    store = await open_store(server.database_url)
    try:
        events = await store.read_stream(stream_name(project))
    finally:
        await store.close()
    return [e for e in events if e.type == kind]


async def logged(server: ServerProcess, project: str, kind: str) -> list[dict[str, Any]]:
    """The data of the project's events of `kind` (JSON ones)."""
    return [json.loads(e.data) for e in await _events(server, project, kind)]


async def metadata(server: ServerProcess, project: str, kind: str) -> list[dict[str, Any]]:
    return [dict(e.metadata) for e in await _events(server, project, kind)]


async def test_an_upload_is_analysed_and_the_analysis_appears_in_a_js_client(
    shared: Site, js_client: JSClients
) -> None:
    server = shared.server
    owner = await server.user("owner")
    project = await server.project(owner)
    # A clip added after the analysis ended does not bring it in: the worker is held until the
    # clip is in the document.
    async with shared.worker.holding():
        asset = await upload(server, owner, project, click_track(128.0, 12.0))
        client = await js_client("owner")
        await client.connect(server.ws_url, project, owner.token)
        await client.wait_synced()
        await client.edit(["tracks.push", {"id": "t1", "name": "Clicks"}])
        await client.edit(["clips.push", "t1", {"id": "c1", "asset_id": asset, "start": 0}])
        await client.wait_settled()
    done = await until_state(server, owner, job_events.analysis_job_id(asset), "done", "failed")
    assert done["state"] == "done", done["error"]
    assert done["attempts"] == 1
    assert abs(done["result"]["tempo"]["bpm"] - 128.0) <= 0.2

    analysis: dict[str, Any] = {}

    async def analysed() -> bool:
        track = (await client.state()).json["tracks"][0]
        analysis.update(track.get("analysis") or {})
        return bool(analysis)

    await wait_until(analysed, "the JS client has the track's analysis", 30)
    assert abs(analysis["tempo_bpm"] - 128.0) <= 0.2
    assert (analysis["asset_id"], analysis["job_id"]) == (asset, done["id"])
    by_ai = [m for m in await metadata(server, project, "doc.updated") if m.get("via") == "ai"]
    assert [(m["user_id"], m["job_id"]) for m in by_ai] == [(job_events.AI_USER_ID, done["id"])]
    async with server.http() as http:
        peaks = await http.get(f"/api/assets/{asset}/waveform", headers=_auth(owner))
    assert peaks.status_code == 200, peaks.text
    resolutions = peaks.json()
    assert len({p["samples_per_pixel"] for p in resolutions}) > 1
    assert all(p["data"] for p in resolutions)


async def test_a_worker_killed_mid_job_leaves_it_to_another_and_one_result_is_logged(
    server: ServerProcess, workers: Workers
) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    lease = {"lease": "3"}
    first = await workers.start(**lease)
    # Held, the first worker is still at the job when it is killed.
    async with first.holding() as held:
        asset = await upload(server, owner, project, click_track(100.0, 4.0))
        job_id = job_events.analysis_job_id(asset)
        running = await until_state(server, owner, job_id, "running", "done")
        assert running["state"] == "running", "the job ended before the worker could be killed"

        async def under_way() -> bool:
            return bool(await logged(server, project, job_events.JOB_STARTED))

        await wait_until(under_way, "the first worker logged its attempt", 10)
        await first.kill()
        await wait_until(lambda: is_gone(held), "the killed worker's task process ended", 10)
    # On SQLite the second can start only now: the first one's turn went with its process.
    await workers.start(**lease)
    done = await until_state(server, owner, job_id, "done", "failed", timeout=2 * JOB_TIME)
    assert done["state"] == "done", done["error"]
    assert done["attempts"] == 2
    started = await logged(server, project, job_events.JOB_STARTED)
    assert [s["attempt"] for s in started] == [1, 2]
    assert len({s["worker"] for s in started}) == 2
    assert len(await logged(server, project, job_events.ANALYSIS_COMPLETED)) == 1


async def test_a_cancelled_job_is_stopped_and_records_no_result(shared: Site) -> None:
    server = shared.server
    owner = await server.user("owner")
    project = await server.project(owner)
    # Held, the job cannot end before the cancel; the worker must stop it to take the next one.
    async with shared.worker.holding() as held:
        asset = await upload(server, owner, project, click_track(100.0, 4.0))
        job_id = job_events.analysis_job_id(asset)
        await until_state(server, owner, job_id, "running")
        async with server.http() as http:
            answer = await http.post(f"/api/jobs/{job_id}/cancel", headers=_auth(owner))
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "cancelled"
        # The worker stops it at its next renewal (a second): it kills the task's process.
        await wait_until(lambda: is_gone(held), "the cancelled job's process is killed", 10)
    # The worker then takes the next job.
    second = await upload(server, owner, project, click_track(90.0, 8.0))
    await until_state(server, owner, job_events.analysis_job_id(second), "done")
    assert (await job(server, owner, job_id))["state"] == "cancelled"
    assert [c["job_id"] for c in await logged(server, project, job_events.ANALYSIS_COMPLETED)] == [
        job_events.analysis_job_id(second)
    ]


async def test_a_job_that_cannot_succeed_fails_with_its_error(shared: Site) -> None:
    server = shared.server
    owner = await server.user("owner")
    project = await server.project(owner)
    asset = await upload(server, owner, project, silence(2.0))
    async with server.http() as http:
        answer = await http.post(
            f"/api/projects/{project}/ai/jobs",
            json={"kind": "mastering", "asset_id": asset, "params": {"preset": "streaming"}},
            headers=_auth(owner),
        )
    assert answer.status_code == 202, answer.text
    failed = await until_state(server, owner, answer.json()["id"], "failed", "done")
    assert failed["state"] == "failed"
    assert "silen" in failed["error"].lower()
    [final] = await logged(server, project, job_events.JOB_FAILED)
    assert final["final"] is True
    assert final["job_id"] == failed["id"]


async def test_a_mastering_makes_a_new_asset_and_the_feed_tells_it_as_it_is_logged(
    shared: Site,
) -> None:
    server = shared.server
    owner = await server.user("owner")
    project = await server.project(owner)
    seen: list[tuple[str, dict[str, Any]]] = []
    connected = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=None) as http,
            http.stream("GET", f"/api/projects/{project}/events", headers=_auth(owner)) as answer,
        ):
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            kind = None
            async for line in answer.aiter_lines():
                if line == ": connected":
                    connected.set()
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind is not None:
                    seen.append((kind, json.loads(line.removeprefix("data: "))))

    listening = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        mix = testsignals.mix(6.0, 44_100)
        out = io.BytesIO()
        audio.write(out, mix * 0.1, 44_100, subtype="FLOAT")
        asset = await upload(server, owner, project, out.getvalue())
        async with server.http() as http:
            answer = await http.post(
                f"/api/projects/{project}/ai/jobs",
                json={"kind": "mastering", "asset_id": asset, "params": {"preset": "apple"}},
                headers=_auth(owner),
            )
        assert answer.status_code == 202, answer.text
        mastering = answer.json()["id"]
        done = await until_state(server, owner, mastering, "done", "failed")
        assert done["state"] == "done", done["error"]
        assert abs(done["result"]["loudness_after"] - (-16.0)) <= 0.3
        assert done["result"]["true_peak_after"] <= -1.0
        output = done["output_asset_id"]
        async with server.http() as http:
            listed = await http.get(f"/api/projects/{project}/assets", headers=_auth(owner))
            new = {a["id"]: a for a in listed.json()["assets"]}[output]
            assert new["user_id"] == job_events.AI_USER_ID
            assert new["sample_rate"] == 44_100
            played = await http.get(f"/api/assets/{output}", headers=_auth(owner))
            assert played.status_code == 200

        def told(kind: str, job_id: str) -> bool:
            return any(k == kind and e["data"].get("job_id") == job_id for k, e in seen)

        await wait_until(
            lambda: told(job_events.MASTERING_COMPLETED, mastering), "the feed tells the result", 10
        )
        kinds = [k for k, _ in seen]
        assert kinds.index("asset.uploaded") < kinds.index(job_events.JOB_REQUESTED)
        assert told(job_events.JOB_STARTED, mastering)
        positions = [e["position"] for _, e in seen]
        assert positions == sorted(positions)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


# The worker alone decides when an attempt drains, is given back or is past its time limit; the
# statements it then runs are the same on both databases and tests/integration/projections/
# test_jobs_queue.py runs them on each. So these run on SQLite, the single-worker setup.
@pytest.mark.parametrize("setup", ["sqlite"], indirect=True)
async def test_sigterm_lets_the_running_job_finish_or_gives_it_back(
    server: ServerProcess, workers: Workers
) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    patient = await workers.start(lease="3")
    # Held until the worker is draining: the job is still running when SIGTERM comes.
    async with patient.holding():
        first = await upload(server, owner, project, click_track(100.0, 4.0))
        await until_state(server, owner, job_events.analysis_job_id(first), "running")
        patient.terminate()
        await patient.logged("worker.drain")
    assert await patient.stop() == 0  # drains: the job it runs finishes
    done = await job(server, owner, job_events.analysis_job_id(first))
    assert (done["state"], done["attempts"]) == ("done", 1)
    hasty = await workers.start(lease="3", drain_timeout="0.2")
    async with hasty.holding():
        second = await upload(server, owner, project, click_track(110.0, 4.0))
        await until_state(server, owner, job_events.analysis_job_id(second), "running")
        assert await hasty.stop() == 0
    given_back = await job(server, owner, job_events.analysis_job_id(second))
    assert (given_back["state"], given_back["attempts"]) == ("queued", 0)


@pytest.mark.parametrize("setup", ["sqlite"], indirect=True)  # as the test above
async def test_an_attempt_past_the_time_limit_fails_the_job(
    server: ServerProcess, workers: Workers
) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    worker = await workers.start(job_timeout="0.5", lease="0.6")
    # Held, the attempt runs past its limit however fast the machine is.
    async with worker.holding() as held:
        asset = await upload(server, owner, project, click_track(100.0, 4.0))
        job_id = job_events.analysis_job_id(asset)
        failed = await until_state(server, owner, job_id, "failed", "done")
        assert failed["state"] == "failed"
        assert "time limit" in failed["error"]
        await wait_until(lambda: is_gone(held), "the task's process is killed", 10)


async def test_a_job_whose_audio_was_deleted_fails_saying_so(shared: Site) -> None:
    server = shared.server
    owner = await server.user("owner")
    project = await server.project(owner)
    # The worker is busy with another job (held) until the audio is deleted.
    async with shared.worker.holding():
        busy = await upload(server, owner, project, click_track(90.0, 4.0))
        await until_state(server, owner, job_events.analysis_job_id(busy), "running")
        asset = await upload(server, owner, project, click_track(90.0, 4.0))
        async with server.http() as http:
            deleted = await http.delete(f"/api/assets/{asset}", headers=_auth(owner))
        assert deleted.status_code == 204, deleted.text
    failed = await until_state(server, owner, job_events.analysis_job_id(asset), "failed", "done")
    assert failed["state"] == "failed"
    assert "the audio is gone" in failed["error"]
