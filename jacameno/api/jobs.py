"""AI jobs over HTTP: request one on a project's asset (owners and editors), list a project's,
read one, cancel one; and `/api/projects/{id}/events`, the project's job and asset events as
Server-Sent Events while they are logged (members; `Last-Event-ID` resumes after a position).
To anyone but a member, a project and its jobs do not exist."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.responses import JSONResponse, Response, StreamingResponse

from domain.roles import can_write
from eventstore import RecordedEvent
from jacameno.api.projects import member_role
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.http.errors import ApiError, conflict, forbidden, not_found
from jacameno.jobs.feed import Overrun, ProjectFeed
from jacameno.jobs.params import BadParams
from jacameno.jobs.service import AlreadyEnded, Jobs, UnknownAsset
from projections.jobs import Job
from projections.projects import ProjectsReadModel

KEEPALIVE = 15.0  # seconds between SSE comments on a quiet feed (proxies close idle streams)


@dataclass(frozen=True, slots=True)
class JobServices:
    projects: ProjectsReadModel
    jobs: Jobs
    feed: ProjectFeed


JobCall = Call[JobServices]


async def request_job(call: JobCall) -> Response:
    project_id, role = await member_role(call.services.projects, call)
    if not can_write(role):
        raise forbidden("viewers may not start AI jobs")
    body = call.body
    try:
        job = await call.services.jobs.request(
            call.me.id, project_id, body["kind"], body["asset_id"], body.get("params", {})
        )
    except BadParams as exc:
        raise ApiError(400, "bad_params", str(exc), ["params"]) from exc
    except UnknownAsset as exc:
        raise not_found("asset") from exc
    return JSONResponse(job.to_json(), status_code=202)


async def list_jobs(call: JobCall) -> Response:
    project_id, _ = await member_role(call.services.projects, call)
    jobs = await call.services.jobs.of_project(project_id)
    return JSONResponse({"jobs": [j.to_json() for j in jobs]})


async def _visible(call: JobCall) -> tuple[Job, str]:
    """The job and the caller's role in its project; 404 unless the caller is a member."""
    job = await call.services.jobs.job(call.uuid("job_id", "job"))
    role = None
    if job is not None:
        role = await call.services.projects.role_of(call.me.id, job.project_id)
    if job is None or role is None:
        raise not_found("job")
    return job, role


async def get_job(call: JobCall) -> Response:
    job, _ = await _visible(call)
    return JSONResponse(job.to_json())


async def cancel_job(call: JobCall) -> Response:
    job, role = await _visible(call)
    if not can_write(role):
        raise forbidden("viewers may not cancel AI jobs")
    try:
        cancelled = await call.services.jobs.cancel(call.me.id, job)
    except AlreadyEnded as exc:
        raise conflict("job_ended", str(exc)) from exc
    return JSONResponse(cancelled.to_json())


def _sse(event: RecordedEvent) -> bytes:
    try:
        data = json.loads(event.data)
    except ValueError:
        data = None
    body = {
        "position": event.position,
        "version": event.version,
        "type": event.type,
        "recorded_at": event.recorded_at.isoformat(),
        "user_id": event.metadata.get("user_id"),
        "data": data,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.position}\nevent: {event.type}\ndata: {text}\n\n".encode()


async def _stream(feed: ProjectFeed, project_id: str, after: int) -> AsyncIterator[bytes]:
    async with feed.listening(project_id, after) as events:
        yield b": connected\n\n"  # from here on, nothing logged is missed
        next_event: asyncio.Task[RecordedEvent] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({next_event}, timeout=KEEPALIVE)
                if not done:
                    yield b": keepalive\n\n"
                    continue
                event, next_event = next_event.result(), None
                yield _sse(event)
        except (StopAsyncIteration, Overrun):
            return
        finally:
            if next_event is not None:
                next_event.cancel()
                await asyncio.wait({next_event})


async def project_events(call: JobCall) -> Response:
    project_id, _ = await member_role(call.services.projects, call)
    resume = call.request.headers.get("last-event-id", "0")
    if not resume.isdigit():
        raise ApiError(400, "bad_parameter", "Last-Event-ID: a log position", ["Last-Event-ID"])
    return StreamingResponse(
        _stream(call.services.feed, project_id, int(resume)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


OPERATIONS: list[Operation[JobServices]] = [
    Operation(
        "POST",
        "/api/projects/{project_id}/ai/jobs",
        "request_job",
        "Queue an AI job (analysis or mastering) on one of the project's assets (owners and "
        "editors); a worker takes it (`jacameno worker`)",
        request_job,
        "jobs",
        request=schemas.NEW_JOB,
        responses={202: schemas.JOB},
        errors=(400, 403, 404),
    ),
    Operation(
        "GET",
        "/api/projects/{project_id}/ai/jobs",
        "list_jobs",
        "The project's AI jobs, the latest first (members)",
        list_jobs,
        "jobs",
        responses={200: schemas.JOBS},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/api/jobs/{job_id}",
        "get_job",
        "An AI job: its state, attempts, progress, error and result (members of its project)",
        get_job,
        "jobs",
        responses={200: schemas.JOB},
        errors=(404,),
    ),
    Operation(
        "POST",
        "/api/jobs/{job_id}/cancel",
        "cancel_job",
        "Cancel a queued or running AI job (owners and editors); its worker stops it",
        cancel_job,
        "jobs",
        responses={200: schemas.JOB},
        errors=(403, 404, 409),
    ),
    Operation(
        "GET",
        "/api/projects/{project_id}/events",
        "project_events",
        "The project's job and asset events as Server-Sent Events while they are logged "
        "(members); `Last-Event-ID` (a log position) resumes after it",
        project_events,
        "jobs",
        responses={200: schemas.FEED_EVENT},
        errors=(400, 404),
        media_type="text/event-stream",
    ),
]
