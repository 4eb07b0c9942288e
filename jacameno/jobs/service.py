"""Jobs as the API sees them: request one (owners and editors), read it, cancel it. A request is
an `ai.job_requested` on the project's stream; the `ai_jobs` projection queues it, and the call
returns once it has (read-your-writes), so the job's id answers at once."""

from __future__ import annotations

import uuid
from typing import Any

from domain.events import jobs as events
from domain.events import stream_name
from eventstore import EventStore, IdempotencyError
from jacameno.jobs.params import BadParams, checked
from jacameno.jobs.queue import JobQueue
from projections.assets import ASSETS, AssetsReadModel
from projections.jobs import JOBS, TERMINAL, Job, JobsReadModel
from projections.runner import ProjectionRunner


class JobError(Exception):
    """A request that cannot be queued as asked (nothing is written)."""


class UnknownAsset(JobError):
    """The asset is not one of the project's."""


class AlreadyEnded(JobError):
    """The job is done, failed or cancelled already."""


class Jobs:
    def __init__(
        self,
        store: EventStore,
        runner: ProjectionRunner,
        reads: JobsReadModel,
        queue: JobQueue,
        assets: AssetsReadModel,
    ) -> None:
        self._store = store
        self._runner = runner
        self.reads = reads
        self._queue = queue
        self._assets = assets

    async def request(
        self, actor: str, project_id: str, kind: str, asset_id: str, params: dict[str, Any]
    ) -> Job:
        """Queue a job of `kind` on one of the project's assets (the caller checked the role).
        BadParams, UnknownAsset, or the queued job."""
        if kind not in events.KINDS:
            raise BadParams(f"kind: one of {', '.join(events.KINDS)}")
        full = checked(kind, params)
        for asset_id_ in (asset_id, full.get("reference_asset_id")):
            if asset_id_ is None:
                continue
            view = await self._assets.asset(asset_id_)
            if view is None or view.asset.project_id != project_id:
                raise UnknownAsset(f"no asset {asset_id_!r} in this project")
        request = events.JobRequest(str(uuid.uuid4()), kind, asset_id, full)
        result = await self._store.append(
            stream_name(project_id), [events.job_requested(request, user_id=actor)]
        )
        await self._runner.wait_for(result.last_position, only=[JOBS])
        job = await self.reads.job(request.job_id)
        assert job is not None, "the projection queued it"
        return job

    async def job(self, job_id: str) -> Job | None:
        """The job; a done one's mastered file is listed by then (`_outputs_listed`)."""
        job = await self.reads.job(job_id)
        if job is not None:
            await self._outputs_listed([job])
        return job

    async def of_project(self, project_id: str) -> list[Job]:
        """The project's jobs, as `reads.of_project`; their mastered files listed by then."""
        jobs = await self.reads.of_project(project_id)
        await self._outputs_listed(jobs)
        return jobs

    async def _outputs_listed(self, jobs: list[Job]) -> None:
        """Return once the assets read model lists the files these jobs made: a file's
        `asset.uploaded` comes in the append of its job's result, and the assets read model
        may be a moment behind the jobs one."""
        outputs = [j.output_asset_id for j in jobs if j.output_asset_id is not None]
        if outputs and len(await self._assets.known(outputs)) < len(set(outputs)):
            await self._runner.wait_for(await self._store.head_position(), only=[ASSETS])

    async def cancel(self, actor: str, job: Job) -> Job:
        """Cancel a queued or running job (its worker stops it at its next lease renewal, and
        its result, should it finish meanwhile, is refused by the log); AlreadyEnded if it
        ended, here or in the log (a result appended since the read model was read)."""
        if job.state in TERMINAL:
            raise AlreadyEnded(f"the job is {job.state} already")
        try:
            result = await self._store.append(
                stream_name(job.project_id), [events.job_cancelled(job.job_id, user_id=actor)]
            )
        except IdempotencyError as exc:  # its result came first
            raise AlreadyEnded("the job ended before the cancel") from exc
        await self._queue.cancel(job.job_id)
        await self._runner.wait_for(result.last_position, only=[JOBS])
        ended = await self.reads.job(job.job_id)
        assert ended is not None
        return ended
