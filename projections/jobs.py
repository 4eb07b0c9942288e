"""The `ai_jobs` read model: the jobs table that AI workers claim their work from.

The fold turns events into rows in the projection's transaction: `asset.uploaded` queues an
analysis of the asset (job id `analysis_job_id(asset)`), `ai.job_requested` queues what was asked;
`ai.job_started` raises the attempts counted, a result (`ai.analysis_completed`,
`ai.mastering_completed`, a final `ai.job_failed`) or `ai.job_cancelled` ends the job. The rest of
a job's life (claimed, its lease, its progress) is written to the live table by the workers
(jacameno/jobs/queue.py): a rebuild keeps what the log says (queued, attempts, results) and
forgets leases, so a job running during a rebuild is claimed again; its result is recorded
once all the same (domain.events.jobs.result_key).

States: queued -> running -> done | failed | cancelled; a running job whose lease expires is
queued again (by the next claim) until its attempts reach the limit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.events import is_project_stream, project_of
from domain.events import jobs as events
from domain.events.assets import ASSET_UPLOADED, read_asset_uploaded
from eventstore import RecordedEvent
from projections.projection import Projection
from projections.runner import Apply
from projections.tables import Names, Table
from sqldb import Connection, Database, Row

JOBS = "ai_jobs"
TERMINAL = ("done", "failed", "cancelled")

TABLES = (
    Table(
        JOBS,
        {
            "job_id": "text not null",
            "project_id": "text not null",
            "kind": "text not null",  # analysis | mastering
            "asset_id": "text not null",
            "params": "text not null",  # JSON object
            "state": "text not null",  # queued | running | done | failed | cancelled
            "requested_by": "text not null",
            "requested_at": "bigint not null",  # epoch milliseconds
            "position": "bigint not null",  # of the event that queued it: claim order
            "attempts": "bigint not null",  # claims so far
            "worker": "text",  # the claiming worker, while running
            "lease_until": "bigint",  # epoch ms: the claim is the worker's until then
            "progress": "double",  # 0..1 while running
            "error": "text",  # the last attempt's error
            "result": "text",  # JSON: what a done job found
            "output_asset_id": "text",  # mastering: the new asset
            "started_at": "bigint",
            "finished_at": "bigint",
        },
        key=("job_id",),
        indexes=[("state", "position"), ("project_id", "position")],
    ),
)


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


async def _queue(
    conn: Connection, table: str, event: RecordedEvent, request: events.JobRequest, user: str
) -> None:
    await conn.execute(
        f"INSERT INTO {table} (job_id, project_id, kind, asset_id, params, state, requested_by,"
        " requested_at, position, attempts) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, 0)"
        " ON CONFLICT (job_id) DO NOTHING",
        request.job_id,
        project_of(event.stream),
        request.kind,
        request.asset_id,
        json.dumps(request.params, separators=(",", ":")),
        user,
        _millis(event),
        event.position,
    )


async def _apply_one(conn: Connection, table: str, event: RecordedEvent) -> None:
    user = str(event.metadata.get("user_id", ""))
    if event.type == ASSET_UPLOADED:
        asset = read_asset_uploaded(event.data)
        request = events.JobRequest(
            events.analysis_job_id(asset.asset_id), "analysis", asset.asset_id
        )
        await _queue(conn, table, event, request, user)
        return
    if event.type == events.JOB_REQUESTED:
        await _queue(conn, table, event, events.read_job_requested(event.data), user)
        return
    data = events.read_job_event(event.data)
    job, at = data["job_id"], _millis(event)
    if event.type == events.JOB_STARTED:
        await conn.execute(
            f"UPDATE {table} SET attempts = $2 WHERE job_id = $1 AND attempts < $2",
            job,
            int(data["attempt"]),
        )
    elif event.type in (events.ANALYSIS_COMPLETED, events.MASTERING_COMPLETED):
        await conn.execute(
            f"UPDATE {table} SET state = 'done', result = $2, output_asset_id = $3, progress = 1,"
            " error = NULL, worker = NULL, lease_until = NULL, finished_at = $4"
            " WHERE job_id = $1 AND state NOT IN ('failed', 'cancelled')",  # the first end wins
            job,
            json.dumps(data.get("result"), separators=(",", ":")),
            data.get("output_asset_id"),
            at,
        )
    elif event.type == events.JOB_FAILED:
        final = bool(data.get("final"))
        await conn.execute(
            f"UPDATE {table} SET error = $2,"
            " state = CASE WHEN $3 = 1 AND state NOT IN ('done', 'cancelled') THEN 'failed'"
            " ELSE state END,"
            " finished_at = CASE WHEN $3 = 1 THEN $4 ELSE finished_at END WHERE job_id = $1",
            job,
            str(data.get("error", "")),
            int(final),
            at,
        )
    elif event.type == events.JOB_CANCELLED:
        await conn.execute(
            f"UPDATE {table} SET state = 'cancelled', worker = NULL, lease_until = NULL,"
            " finished_at = $2 WHERE job_id = $1 AND state NOT IN ('done', 'failed')",
            job,
            at,
        )


def fold(names: Names) -> Apply:
    """Few events, each one statement (a job's events depend on its row)."""

    async def apply(conn: Connection, batch: list[RecordedEvent]) -> None:
        for event in batch:
            if is_project_stream(event.stream):
                await _apply_one(conn, names[JOBS], event)

    return apply


def jobs_projection() -> Projection:
    return Projection(
        name=JOBS,
        event_types=frozenset({ASSET_UPLOADED, *events.JOB_EVENT_TYPES}),
        fold=fold,
        tables=TABLES,
    )


# -- the queries ---------------------------------------------------------------------------

COLUMNS = (
    "job_id, project_id, kind, asset_id, params, state, requested_by, requested_at, attempts,"
    " worker, lease_until, progress, error, result, output_asset_id, started_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    project_id: str
    kind: str
    asset_id: str
    params: dict[str, Any]
    state: str
    requested_by: str
    requested_at: int
    attempts: int
    worker: str | None
    lease_until: int | None
    progress: float | None
    error: str | None
    result: Any
    output_asset_id: str | None
    started_at: int | None
    finished_at: int | None

    @classmethod
    def of(cls, row: Row) -> Job:
        return cls(
            job_id=row["job_id"],
            project_id=row["project_id"],
            kind=row["kind"],
            asset_id=row["asset_id"],
            params=json.loads(row["params"]),
            state=row["state"],
            requested_by=row["requested_by"],
            requested_at=int(row["requested_at"]),
            attempts=int(row["attempts"]),
            worker=row["worker"],
            lease_until=None if row["lease_until"] is None else int(row["lease_until"]),
            progress=row["progress"],
            error=row["error"],
            result=None if row["result"] is None else json.loads(row["result"]),
            output_asset_id=row["output_asset_id"],
            started_at=None if row["started_at"] is None else int(row["started_at"]),
            finished_at=None if row["finished_at"] is None else int(row["finished_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "project_id": self.project_id,
            "kind": self.kind,
            "asset_id": self.asset_id,
            "params": self.params,
            "state": self.state,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "attempts": self.attempts,
            "progress": self.progress,
            "error": self.error,
            "result": self.result,
            "output_asset_id": self.output_asset_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class JobsReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def job(self, job_id: str) -> Job | None:
        row = await self._db.fetchrow(f"SELECT {COLUMNS} FROM {JOBS} WHERE job_id = $1", job_id)
        return None if row is None else Job.of(row)

    async def of_project(self, project_id: str, *, limit: int = 100) -> list[Job]:
        """The project's jobs, the latest queued first."""
        rows = await self._db.fetch(
            f"SELECT {COLUMNS} FROM {JOBS} WHERE project_id = $1 ORDER BY position DESC LIMIT $2",
            project_id,
            limit,
        )
        return [Job.of(r) for r in rows]
