"""AI jobs through the API, on the embedded default and on Postgres + Redis: an upload queues its
analysis, jobs are requested with checked parameters, read and cancelled by the right people, and
nothing of another project shows."""

from __future__ import annotations

from typing import Any

import pytest

from domain.events import jobs as events
from domain.events import stream_name
from domain.events.jobs import analysis_job_id
from harness.audio import wav_bytes
from jacameno.jobs.service import AlreadyEnded
from projections.jobs import JOBS
from tests.integration.api.support import Api, Member

BINARY = {"Content-Type": "application/octet-stream"}


async def _asset(api: Api, who: Member, project: str) -> dict[str, Any]:
    answer = await api.client.post(
        f"/api/projects/{project}/assets",
        params={"name": "take.wav"},
        content=wav_bytes(),
        headers={**who.headers, **BINARY},
    )
    assert answer.status_code == 201, answer.text
    asset: dict[str, Any] = answer.json()
    return asset


async def _request(api: Api, who: Member, project: str, body: dict[str, Any]) -> Any:
    return await api.client.post(f"/api/projects/{project}/ai/jobs", json=body, headers=who.headers)


async def test_an_upload_queues_its_analysis(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = await _asset(api, owner, project)
    listed = await api.client.get(f"/api/projects/{project}/ai/jobs", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    [job] = listed.json()["jobs"]
    assert job["id"] == analysis_job_id(asset["id"])
    assert (job["kind"], job["asset_id"], job["state"], job["attempts"]) == (
        "analysis",
        asset["id"],
        "queued",
        0,
    )
    one = await api.client.get(f"/api/jobs/{job['id']}", headers=owner.headers)
    assert one.json() == job


async def test_a_mastering_is_queued_with_its_parameters_spelled_out(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = await _asset(api, owner, project)
    body = {"kind": "mastering", "asset_id": asset["id"], "params": {"preset": "apple"}}
    answer = await _request(api, owner, project, body)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued"
    assert job["params"] == {
        "preset": "apple",
        "target_lufs": -16.0,
        "ceiling_dbtp": -1.0,
        "tilt_db_per_octave": 0.0,
        "reference_asset_id": None,
    }


async def test_bad_parameters_are_refused_and_nothing_is_queued(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = (await _asset(api, owner, project))["id"]
    # Each value out of its range or an unknown one: the schema's 422, naming where.
    for params, where in (
        ({"preset": "loud"}, "/params/preset"),
        ({"preset": "custom", "target_lufs": -2}, "/params/target_lufs"),
        ({"ceiling_dbtp": 3}, "/params/ceiling_dbtp"),
        ({"tilt_db_per_octave": 6}, "/params/tilt_db_per_octave"),
        ({"volume": 11}, "/params"),
    ):
        body = {"kind": "mastering", "asset_id": asset, "params": params}
        answer = await _request(api, owner, project, body)
        assert answer.status_code == 422, answer.text
        assert where in {d["path"] for d in answer.json()["error"]["details"]}
    # Values that do not go together: 400, naming the parameter.
    for kind, params, word in (
        ("mastering", {"preset": "custom"}, "target_lufs"),
        ("mastering", {"preset": "apple", "target_lufs": -20}, "target_lufs"),
        ("mastering", {"preset": "reference"}, "reference_asset_id"),
        ("analysis", {"preset": "apple"}, "preset"),
    ):
        body = {"kind": kind, "asset_id": asset, "params": params}
        answer = await _request(api, owner, project, body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_params"
        assert word in answer.json()["error"]["message"]
    # A body of another shape is refused by the schema (422), as everywhere in the API.
    answer = await _request(api, owner, project, {"kind": "analysis", "asset_id": asset, "x": 1})
    assert answer.status_code == 422
    answer = await _request(api, owner, project, {"kind": "mixing", "asset_id": asset})
    assert answer.status_code == 422
    listed = await api.client.get(f"/api/projects/{project}/ai/jobs", headers=owner.headers)
    assert [j["kind"] for j in listed.json()["jobs"]] == ["analysis"]  # the upload's


async def test_another_projects_asset_is_not_found(api: Api) -> None:
    owner = await api.member("owner")
    mine, theirs = (await api.project(owner))["id"], (await api.project(owner))["id"]
    other = (await _asset(api, owner, theirs))["id"]
    answer = await _request(api, owner, mine, {"kind": "analysis", "asset_id": other})
    assert answer.status_code == 404
    reference = {"preset": "reference", "reference_asset_id": other}
    own = (await _asset(api, owner, mine))["id"]
    body = {"kind": "mastering", "asset_id": own, "params": reference}
    assert (await _request(api, owner, mine, body)).status_code == 404


async def test_viewers_read_jobs_but_neither_start_nor_cancel_them(api: Api) -> None:
    owner, viewer, stranger = [await api.member(n) for n in ("owner", "viewer", "stranger")]
    project = (await api.project(owner))["id"]
    await api.invite(owner, project, viewer, "viewer")
    asset = (await _asset(api, owner, project))["id"]
    job = analysis_job_id(asset)
    answer = await _request(api, viewer, project, {"kind": "analysis", "asset_id": asset})
    assert answer.status_code == 403
    assert (await api.client.get(f"/api/jobs/{job}", headers=viewer.headers)).status_code == 200
    cancel = await api.client.post(f"/api/jobs/{job}/cancel", headers=viewer.headers)
    assert cancel.status_code == 403
    for path in (f"/api/jobs/{job}", f"/api/projects/{project}/ai/jobs"):
        assert (await api.client.get(path, headers=stranger.headers)).status_code == 404
    cancel = await api.client.post(f"/api/jobs/{job}/cancel", headers=stranger.headers)
    assert cancel.status_code == 404


async def test_a_cancelled_job_stays_cancelled(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = (await _asset(api, owner, project))["id"]
    job = analysis_job_id(asset)
    cancel = await api.client.post(f"/api/jobs/{job}/cancel", headers=owner.headers)
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["state"] == "cancelled"
    again = await api.client.post(f"/api/jobs/{job}/cancel", headers=owner.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_ended"
    unknown = await api.client.get("/api/jobs/no-such-job", headers=owner.headers)
    assert unknown.status_code == 404


async def test_a_cancel_after_the_result_is_refused_however_close_it_comes(api: Api) -> None:
    # The worker's result is appended just before the cancel: whether or not the read model has
    # it yet, the log keeps one end per job, the result, and the cancel is told the job ended.
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = (await _asset(api, owner, project))["id"]
    job = analysis_job_id(asset)
    stale = await api.services.jobs.job(job)
    assert stale is not None
    assert stale.state == "queued"
    store = api.services.core.store
    completed = events.job_completed("analysis", job, attempt=1, asset_id=asset, result={})
    result = await store.append(stream_name(project), [completed])
    with pytest.raises(AlreadyEnded):
        await api.services.jobs.cancel(owner.id, stale)  # as if it had read before the result
    cancel = await api.client.post(f"/api/jobs/{job}/cancel", headers=owner.headers)
    assert cancel.status_code == 409
    assert cancel.json()["error"]["code"] == "job_ended"
    logged = [e.type for e in await store.read_stream(stream_name(project), 1, 1000)]
    assert logged.count(events.JOB_CANCELLED) == 0
    await api.services.core.runner.wait_for(result.last_position, only=[JOBS])
    shown = await api.client.get(f"/api/jobs/{job}", headers=owner.headers)
    assert shown.json()["state"] == "done"
