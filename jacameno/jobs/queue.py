"""The workers' side of the jobs table (projections/jobs.py): claim a job, keep its lease,
let it go, end it. Every state change here is one statement, so two workers never hold one job:
on Postgres the claim locks the row it picks and skips rows other claims hold
(`FOR UPDATE SKIP LOCKED`); on SQLite the statement runs under the database's one write lock.

A claim counts an attempt and gives the worker the job until `lease_until`; the worker renews it
(`renew`) while it works. A job whose lease ran out (its worker died) is claimable again while
its attempts are below the limit; past it, `exhausted` lists it for a final failure."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from projections.jobs import COLUMNS, JOBS, Job
from sqldb import Database


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a worker holds: which attempt this is and until when."""

    job: Job
    worker: str
    attempt: int
    lease_until: int


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


class JobQueue:
    def __init__(
        self,
        db: Database,
        *,
        lease: float = 30.0,
        max_attempts: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lease <= 0 or max_attempts < 1:
            raise ValueError("the lease must be positive and at least one attempt allowed")
        self._db = db
        self.lease = lease
        self.max_attempts = max_attempts
        self._clock = clock

    async def claim(self, worker: str, kinds: Collection[str]) -> Claim | None:
        """The oldest claimable job of `kinds` (queued, or running with its lease run out and
        attempts left), now `worker`'s; None if there is none."""
        if not kinds:
            return None
        now = _now_ms(self._clock)
        until = now + int(self.lease * 1000)
        marks = ", ".join(f"${i + 5}" for i in range(len(kinds)))
        lock = " FOR UPDATE SKIP LOCKED" if self._db.kind == "postgres" else ""
        row = await self._db.fetchrow(
            f"UPDATE {JOBS} SET state = 'running', worker = $1, attempts = attempts + 1,"
            " lease_until = $2, started_at = $3, progress = 0"
            f" WHERE job_id = (SELECT job_id FROM {JOBS} WHERE kind IN ({marks})"
            " AND attempts < $4 AND (state = 'queued' OR (state = 'running' AND lease_until < $3))"
            f" ORDER BY position LIMIT 1{lock}) RETURNING {COLUMNS}",
            worker,
            until,
            now,
            self.max_attempts,
            *kinds,
        )
        if row is None:
            return None
        job = Job.of(row)
        return Claim(job, worker, job.attempts, until)

    async def renew(self, claim: Claim, progress: float | None = None) -> Claim | None:
        """The claim with its lease renewed (and the progress recorded); None if the job is no
        longer this attempt's (cancelled, or claimed again after the lease ran out)."""
        until = _now_ms(self._clock) + int(self.lease * 1000)
        row = await self._db.fetchrow(
            f"UPDATE {JOBS} SET lease_until = $4, progress = COALESCE($5, progress)"
            " WHERE job_id = $1 AND worker = $2 AND attempts = $3 AND state = 'running'"
            " RETURNING job_id",
            claim.job.job_id,
            claim.worker,
            claim.attempt,
            until,
            progress,
        )
        if row is None:
            return None
        return Claim(claim.job, claim.worker, claim.attempt, until)

    async def release(self, claim: Claim) -> None:
        """Give the job back unfinished (a worker draining): queued again at once, the attempt
        not counted."""
        await self._db.execute(
            f"UPDATE {JOBS} SET state = 'queued', worker = NULL, lease_until = NULL,"
            " attempts = attempts - 1, progress = NULL"
            " WHERE job_id = $1 AND worker = $2 AND attempts = $3 AND state = 'running'",
            claim.job.job_id,
            claim.worker,
            claim.attempt,
        )

    async def end(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        result: str | None = None,
        output_asset_id: str | None = None,
    ) -> None:
        """Mark the job ended (done, failed) as its result event, already in the log, says:
        seen at once, before the projection folds that event (which writes the same)."""
        await self._db.execute(
            f"UPDATE {JOBS} SET state = $2, error = COALESCE($3, error),"
            " result = COALESCE($4, result), output_asset_id = COALESCE($5, output_asset_id),"
            " progress = CASE WHEN $2 = 'done' THEN 1 ELSE progress END,"
            " worker = NULL, lease_until = NULL, finished_at = $6"
            " WHERE job_id = $1 AND state NOT IN ('done', 'failed', 'cancelled')",
            job_id,
            state,
            error,
            result,
            output_asset_id,
            _now_ms(self._clock),
        )

    async def cancel(self, job_id: str) -> None:
        """Mark the job cancelled (its `ai.job_cancelled` already logged), unless it ended."""
        await self._db.execute(
            f"UPDATE {JOBS} SET state = 'cancelled', worker = NULL, lease_until = NULL,"
            " finished_at = $2 WHERE job_id = $1 AND state NOT IN ('done', 'failed', 'cancelled')",
            job_id,
            _now_ms(self._clock),
        )

    async def exhausted(self) -> list[Job]:
        """Running jobs whose lease ran out with no attempt left: their workers died each time."""
        rows = await self._db.fetch(
            f"SELECT {COLUMNS} FROM {JOBS} WHERE state = 'running' AND lease_until < $1"
            " AND attempts >= $2 ORDER BY position",
            _now_ms(self._clock),
            self.max_attempts,
        )
        return [Job.of(r) for r in rows]

    async def retry(self, claim: Claim, error: str) -> None:
        """Queue the job again at once after an attempt that failed for a reason that may pass
        (its process died): the attempt counts."""
        await self._db.execute(
            f"UPDATE {JOBS} SET state = 'queued', worker = NULL, lease_until = NULL, error = $4"
            " WHERE job_id = $1 AND worker = $2 AND attempts = $3 AND state = 'running'",
            claim.job.job_id,
            claim.worker,
            claim.attempt,
            error,
        )
