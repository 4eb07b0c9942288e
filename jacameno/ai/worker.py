"""`jacameno worker`: claims AI jobs from the jobs table and runs them, any number of workers on
any nodes (one per SQLite database).

For each claim: log `ai.job_started`, fetch the asset's audio (and a mastering reference) from
storage into a scratch folder, run the task in a child process (jacameno.ai.slot) while renewing
the lease every third of it, then store what it made (the waveform peaks beside the audio, a
mastered file as a new asset of the project, in the same append as the result) and log the one
result of the job. A job cancelled meanwhile, or taken by another worker after this one's lease
ran out, is stopped at the next renewal and logs nothing more; a cancel that comes after the
last renewal is the job's end all the same, since the log keeps one end per job
(domain.events.jobs): the result that follows it is refused, and nothing of it is kept. An
attempt past the time limit fails the job; a task that raises fails it with its error; a child
process that dies leaves the job to be tried again, up to the attempts allowed. On SIGTERM the
worker claims nothing more, lets its running jobs finish for up to the drain timeout, and gives
back those that did not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from domain.events import jobs as events
from domain.events import stream_name
from eventstore import EventStore, EventStoreError, IdempotencyError, NewEvent
from jacameno.ai.slot import Slot, SlotDied, TaskFailed
from jacameno.ai.spec import Answer, Task
from jacameno.assets.service import AssetNotFound
from jacameno.jobs.queue import Claim, JobQueue
from jacameno.settings.ai import AIConfig
from jacameno.storage import BlobNotFound, StorageUnavailable
from projections.jobs import Job
from sqldb import DatabaseError

logger = logging.getLogger(__name__)

TASKS = "jacameno.ai.tasks:run"


class Inputs(Protocol):
    """Where a worker's files come from and go to (jacameno.assets, over the blob store)."""

    async def fetch(self, asset_id: str, project_id: str, path: Path) -> None:
        """Write the asset's bytes to `path`; AssetNotFound if the project has no such asset."""
        ...

    async def keep_waveform(self, asset_id: str, project_id: str, path: Path) -> str:
        """Store the waveform peaks file made for the asset; the URL path that serves them."""
        ...

    async def store_mastered(self, job: Job, path: Path) -> tuple[str, NewEvent]:
        """Store a mastered file's bytes as a new asset of the job's project, the AI service
        user's: its asset id and the event that adds it (appended with the job's result)."""
        ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class _Attempt:
    claim: Claim
    progress: float = 0.0


class Worker:
    def __init__(
        self,
        store: EventStore,
        queue: JobQueue,
        inputs: Inputs,
        config: AIConfig,
        *,
        name: str | None = None,
        kinds: tuple[str, ...] = events.KINDS,
        tasks: str = TASKS,
        scratch: Path | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._inputs = inputs
        self._config = config
        self.name = name or worker_name()
        self._kinds = kinds
        self._slots = [Slot(tasks) for _ in range(config.concurrency)]
        self._scratch = scratch
        self._stopping = asyncio.Event()
        self._drained = 0.0  # the monotonic time by which running jobs must end, once stopping

    def stop(self) -> None:
        """Claim nothing more; running jobs get `drain_timeout` seconds to finish."""
        if not self._stopping.is_set():
            self._drained = time.monotonic() + self._config.drain_timeout
            self._stopping.set()
            logger.info("draining", extra={"action": "worker.drain", "worker": self.name})

    async def run(self) -> None:
        """Claim and run jobs, one per slot at a time, until `stop`."""
        logger.info(
            "started",
            extra={"action": "worker.start", "worker": self.name, "kinds": list(self._kinds)},
        )
        try:
            # Each slot imports the numeric stack before the first claim: a job's lease and time
            # limit are spent on the job, and a worker that cannot import it fails at start.
            if await self._warm(*self._slots):
                logger.info("ready", extra={"action": "worker.ready", "worker": self.name})
                await asyncio.gather(*(self._serve(slot) for slot in self._slots))
        finally:
            for slot in self._slots:
                slot.kill()
        logger.info("stopped", extra={"action": "worker.stop", "worker": self.name})

    async def _serve(self, slot: Slot) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if not await self._warm(slot):  # again, after a task's process was killed
                    return
                await self._fail_exhausted()
                claim = await self._queue.claim(self.name, self._kinds)
                if claim is None:
                    await self._pause(self._config.poll_interval)
                else:
                    await self._attempt(slot, claim)
                backoff = 0.1
            except (EventStoreError, DatabaseError, StorageUnavailable) as exc:
                logger.warning(
                    "the log, the jobs table or the storage failed; trying again",
                    extra={"action": "worker.retry", "worker": self.name, "error": str(exc)},
                )
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug must not stop the worker: the job's lease runs out
                logger.exception("job attempt failed", extra={"action": "worker.error"})
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _warm(self, *slots: Slot) -> bool:
        """Start the slots' task processes (Slot.start); False if the worker is stopped first:
        a stopping worker does not wait for an import it will not use."""
        warming: asyncio.Future[Any] = asyncio.gather(*(slot.start() for slot in slots))
        stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({warming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not warming.done():
            await _cancelled(warming)
            return False
        warming.result()
        return True

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _log(self, job: Job, *new: NewEvent) -> bool:
        """Append `new` to the job's project stream; False if the log refused it because the
        job has its end already (an earlier attempt's result, or a cancel)."""
        try:
            await self._store.append(stream_name(job.project_id), list(new))
        except IdempotencyError:
            return False
        return True

    async def _fail_exhausted(self) -> None:
        for job in await self._queue.exhausted():
            error = f"its worker stopped {job.attempts} times before it finished"
            failed = events.job_failed(job.job_id, attempt=job.attempts, error=error, final=True)
            if await self._log(job, failed):
                await self._queue.end(job.job_id, "failed", error=error)

    async def _attempt(self, slot: Slot, claim: Claim) -> None:
        job = claim.job
        extra = {"worker": self.name, "job": job.job_id, "kind": job.kind, "attempt": claim.attempt}
        logger.info("job claimed", extra={"action": "worker.claim", **extra})
        await self._log(
            job, events.job_started(job.job_id, attempt=claim.attempt, worker=self.name)
        )
        attempt = _Attempt(claim)
        try:
            await self._work(slot, attempt, extra)
        except (EventStoreError, DatabaseError, StorageUnavailable):
            # The log, the table or the storage failed under the job: it goes back to the queue
            # (its attempt not counted) for when they are back.
            with contextlib.suppress(Exception):
                await self._queue.release(attempt.claim)
            raise

    async def _work(self, slot: Slot, attempt: _Attempt, extra: dict[str, Any]) -> None:
        job = attempt.claim.job
        claim = attempt.claim
        with tempfile.TemporaryDirectory(dir=self._scratch, prefix="ai-job-") as folder:
            # Fetching a large file may outlast a lease: it is watched (and renewed) too.
            fetching = asyncio.create_task(self._task(job, Path(folder)))
            outcome = await self._watch(fetching, attempt)
            if outcome is None:
                try:
                    task = fetching.result()
                except (AssetNotFound, BlobNotFound) as exc:
                    await self._fail(job, claim.attempt, f"the audio is gone: {exc}")
                    return
                running = asyncio.create_task(
                    slot.run(task, lambda f: setattr(attempt, "progress", f))
                )
                outcome = await self._watch(running, attempt)
            if outcome is not None:
                logger.info(
                    "job stopped", extra={"action": "worker.stopped", "why": outcome, **extra}
                )
                return
            try:
                answer = running.result()
            except TaskFailed as exc:
                await self._fail(job, claim.attempt, str(exc))
                return
            except SlotDied as exc:
                await self._died(attempt.claim, str(exc))
                return
            why = await self._finish(attempt, answer)
            if why is not None:
                logger.info("job stopped", extra={"action": "worker.stopped", "why": why, **extra})
                return
            logger.info("job done", extra={"action": "worker.done", **extra})

    async def _task(self, job: Job, folder: Path) -> Task:
        source = folder / "source"
        await self._inputs.fetch(job.asset_id, job.project_id, source)
        reference = None
        reference_id = job.params.get("reference_asset_id")
        if isinstance(reference_id, str):
            reference = folder / "reference"
            await self._inputs.fetch(reference_id, job.project_id, reference)
        return Task(
            job.kind,
            str(source),
            str(folder),
            job.params,
            None if reference is None else str(reference),
        )

    async def _watch(self, running: asyncio.Task[Any], attempt: _Attempt) -> str | None:
        """Wait for the task, renewing the lease; stop it and say why (None: it ended)."""
        started = time.monotonic()
        renew = self._config.lease / 3
        while True:
            done, _ = await asyncio.wait({running}, timeout=renew)
            if done:
                return None
            if self._stopping.is_set() and time.monotonic() >= self._drained:
                await _cancelled(running)
                await self._queue.release(attempt.claim)
                return "drained"
            if time.monotonic() - started > self._config.job_timeout:
                await _cancelled(running)
                job = attempt.claim.job
                error = f"the job took longer than its time limit of {self._config.job_timeout:g} s"
                await self._fail(job, attempt.claim.attempt, error)
                return "timed out"
            renewed = await self._queue.renew(attempt.claim, attempt.progress)
            if renewed is None:  # cancelled, or claimed again after the lease ran out
                await _cancelled(running)
                return "no longer ours"
            attempt.claim = renewed

    async def _fail(self, job: Job, attempt: int, error: str) -> None:
        failed = events.job_failed(job.job_id, attempt=attempt, error=error, final=True)
        if await self._log(job, failed):
            await self._queue.end(job.job_id, "failed", error=error)

    async def _died(self, claim: Claim, error: str) -> None:
        job = claim.job
        if claim.attempt >= self._queue.max_attempts:
            await self._fail(job, claim.attempt, error)
            return
        await self._log(
            job, events.job_failed(job.job_id, attempt=claim.attempt, error=error, final=False)
        )
        await self._queue.retry(claim, error)

    async def _finish(self, attempt: _Attempt, answer: Answer) -> str | None:
        """Store what the task made and log the job's result (with the mastered file's
        `asset.uploaded`, in the same append: the file is an asset only if the result is
        logged); why not, if the job is no longer this attempt's (cancelled meanwhile)."""
        job, claim = attempt.claim.job, attempt.claim
        renewed = await self._queue.renew(claim, 1.0)  # spare storing for a cancelled job
        if renewed is None:
            return "no longer ours"
        attempt.claim = renewed
        result, output, added = dict(answer.result), None, []
        if "waveform" in answer.outputs:
            result["waveform_url"] = await self._inputs.keep_waveform(
                job.asset_id, job.project_id, Path(answer.outputs["waveform"])
            )
        if "mastered" in answer.outputs:
            output, uploaded = await self._inputs.store_mastered(
                job, Path(answer.outputs["mastered"])
            )
            added.append(uploaded)
        kind: events.Kind = "analysis" if job.kind == "analysis" else "mastering"
        completed = events.job_completed(
            kind,
            job.job_id,
            attempt=claim.attempt,
            asset_id=job.asset_id,
            result=result,
            output_asset_id=output,
        )
        if not await self._log(job, *added, completed):
            return "ended meanwhile"  # (the log keeps the first end: the cancel)
        await self._queue.end(job.job_id, "done", result=json.dumps(result), output_asset_id=output)
        return None


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it ended (what it ended with is moot)."""
    task.cancel()
    await asyncio.wait({task})
