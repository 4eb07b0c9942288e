"""The jobs table: the `ai_jobs` projection queues jobs from the log, and the workers' queue
claims, renews, releases and ends them, on SQLite and Postgres alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from domain.events import jobs as events
from domain.events import stream_name
from domain.events.assets import UploadedAsset, asset_uploaded
from eventstore import EventStore, IdempotencyError
from jacameno.jobs.queue import JobQueue
from projections.jobs import JobsReadModel, jobs_projection
from projections.runner import ProjectionRunner
from sqldb import Database

PROJECT = "p1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def runner(store: EventStore, db: Database) -> AsyncIterator[ProjectionRunner]:
    r = ProjectionRunner(store, db, [jobs_projection()], lull=0.01)
    await r.start()
    yield r
    await r.stop()


def _asset(asset_id: str) -> UploadedAsset:
    return UploadedAsset(
        asset_id=asset_id, project_id=PROJECT, user_id="u1", sha256="00" * 32, size=44,
        content_type="audio/wav", format="WAV", sample_rate=48000, channels=2, frames=48000,
        duration=1.0, name=f"{asset_id}.wav",
    )  # fmt: skip


async def _log(store: EventStore, runner: ProjectionRunner, *new: object) -> None:
    result = await store.append(stream_name(PROJECT), list(new))  # type: ignore[arg-type]
    await runner.wait_for(result.last_position)


async def test_an_upload_queues_one_analysis_however_often_it_is_folded(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    await _log(store, runner, asset_uploaded(_asset("a1")))
    job_id = events.analysis_job_id("a1")
    job = await JobsReadModel(db).job(job_id)
    assert job is not None
    assert (job.kind, job.asset_id, job.state, job.attempts) == ("analysis", "a1", "queued", 0)
    assert job.requested_by == "u1"
    await runner.rebuild("ai_jobs")
    assert [j.job_id for j in await JobsReadModel(db).of_project(PROJECT)] == [job_id]


async def test_two_workers_never_hold_one_job(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    await _log(store, runner, *(asset_uploaded(_asset(f"a{i}")) for i in range(3)))
    queue = JobQueue(db)
    claims = await asyncio.gather(*(queue.claim(f"w{i}", ["analysis"]) for i in range(8)))
    held = [c for c in claims if c is not None]
    assert sorted(c.job.asset_id for c in held) == ["a0", "a1", "a2"]
    assert all(c.attempt == 1 and c.job.state == "running" for c in held)
    assert await queue.claim("late", ["analysis"]) is None
    assert await queue.claim("other kinds", ["mastering"]) is None


async def test_a_job_whose_worker_died_is_claimed_again_until_its_attempts_run_out(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    await _log(store, runner, asset_uploaded(_asset("a1")))
    clock = Clock()
    queue = JobQueue(db, lease=30, max_attempts=2, clock=clock)
    first = await queue.claim("w1", ["analysis"])
    assert first is not None
    clock.now += 20
    first = await queue.renew(first, 0.5)
    assert first is not None
    clock.now += 29
    assert await queue.claim("w2", ["analysis"]) is None  # the lease holds
    clock.now += 2
    second = await queue.claim("w2", ["analysis"])
    assert second is not None
    assert (second.worker, second.attempt) == ("w2", 2)
    assert await queue.renew(first) is None  # the first worker lost it
    clock.now += 31
    assert await queue.claim("w3", ["analysis"]) is None  # no attempt left
    assert [j.job_id for j in await queue.exhausted()] == [second.job.job_id]


async def test_a_released_job_is_queued_again_without_counting_the_attempt(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    await _log(store, runner, asset_uploaded(_asset("a1")))
    queue = JobQueue(db)
    claim = await queue.claim("w1", ["analysis"])
    assert claim is not None
    await queue.release(claim)
    again = await queue.claim("w2", ["analysis"])
    assert again is not None
    assert again.attempt == 1


async def test_results_and_cancels_end_jobs_as_the_log_says_also_after_a_rebuild(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    done = events.JobRequest("j-done", "mastering", "a1", {"preset": "streaming"})
    failed = events.JobRequest("j-failed", "analysis", "a1")
    cancelled = events.JobRequest("j-cancelled", "analysis", "a1")
    await _log(
        store,
        runner,
        *(events.job_requested(r, user_id="u1") for r in (done, failed, cancelled)),
    )
    queue = JobQueue(db)
    running = await queue.claim("w1", ["mastering"])
    assert running is not None
    await _log(
        store,
        runner,
        events.job_started("j-done", attempt=1, worker="w1"),
        events.job_completed(
            "mastering",
            "j-done",
            attempt=1,
            asset_id="a1",
            result={"gain": 3.0},
            output_asset_id="a2",
        ),
        events.job_failed("j-failed", attempt=1, error="boom", final=False),
        events.job_failed("j-failed", attempt=2, error="boom again", final=True),
        events.job_cancelled("j-cancelled", user_id="u1"),
    )
    # A retried attempt's result is not recorded twice.
    again = events.job_completed(
        "mastering", "j-done", attempt=1, asset_id="a1", result={"gain": 3.0}, output_asset_id="a2"
    )
    before = await store.stream_version(stream_name(PROJECT))
    await store.append(stream_name(PROJECT), [again])
    assert await store.stream_version(stream_name(PROJECT)) == before
    reads = JobsReadModel(db)

    async def states() -> dict[str, tuple[str, int, str | None, str | None]]:
        jobs = await reads.of_project(PROJECT)
        return {j.job_id: (j.state, j.attempts, j.error, json.dumps(j.result)) for j in jobs}

    expected = {
        "j-done": ("done", 1, None, '{"gain": 3.0}'),
        "j-failed": ("failed", 0, "boom again", "null"),
        "j-cancelled": ("cancelled", 0, None, "null"),
    }
    assert await states() == expected
    done_job = await reads.job("j-done")
    assert done_job is not None
    assert done_job.output_asset_id == "a2"
    await runner.rebuild("ai_jobs")
    assert await states() == expected


async def test_a_job_has_one_end_in_the_log_whichever_comes_first(
    store: EventStore, runner: ProjectionRunner, db: Database
) -> None:
    # A cancel and a worker's result racing: the first appended is the job's end; the other is
    # refused whole (the mastered file's asset with it), and a repeated cancel is the same one.
    first = events.JobRequest("j-cancel-first", "mastering", "a1", {"preset": "streaming"})
    second = events.JobRequest("j-result-first", "analysis", "a1")
    await _log(store, runner, *(events.job_requested(r, user_id="u1") for r in (first, second)))
    await _log(store, runner, events.job_cancelled("j-cancel-first", user_id="u1"))
    late = [
        asset_uploaded(_asset("a-mastered")),
        events.job_completed(
            "mastering",
            "j-cancel-first",
            attempt=1,
            asset_id="a1",
            result={"gain": 1.0},
            output_asset_id="a-mastered",
        ),
    ]
    before = await store.stream_version(stream_name(PROJECT))
    with pytest.raises(IdempotencyError):
        await store.append(stream_name(PROJECT), late)
    with pytest.raises(IdempotencyError):
        await store.append(
            stream_name(PROJECT),
            [events.job_failed("j-cancel-first", attempt=1, error="late", final=True)],
        )
    await store.append(stream_name(PROJECT), [events.job_cancelled("j-cancel-first", user_id="u2")])
    assert await store.stream_version(stream_name(PROJECT)) == before
    await _log(
        store,
        runner,
        events.job_completed("analysis", "j-result-first", attempt=1, asset_id="a1", result={}),
    )
    with pytest.raises(IdempotencyError):
        await store.append(
            stream_name(PROJECT), [events.job_cancelled("j-result-first", user_id="u1")]
        )
    reads = JobsReadModel(db)
    states = {j.job_id: j.state for j in await reads.of_project(PROJECT)}
    assert states == {"j-cancel-first": "cancelled", "j-result-first": "done"}
