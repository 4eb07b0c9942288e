"""How deep the room's document nests its shared types (crdt.nesting), as the room's writer keeps
it, and built after the room opens for a large document.

Building the nesting of a whole document walks every struct in Python: 17 s for the 23 MB
document of the benchmark's million-update project (1.2 million structs), where building the
document itself takes 2 s. So a document of `BACKGROUND_BYTES` or more opens without it: the
nesting is built in a process of its own (in a thread it would hold the GIL, and every room of
the node would wait), while the room serves. Meanwhile the runs of every update the room applies
are kept in order and recorded once the nesting is ready, so it ends exactly as if it had been
built first; only an update that holds a shared type, whose depth must be checked before it is
applied, waits for it (`wait`)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from crdt.nesting import Nesting, Resolved
from crdt.update import UpdateSummary

logger = logging.getLogger(__name__)

BACKGROUND_BYTES = 2 * 1024 * 1024  # documents at least this large open before their nesting


class NotReady(RuntimeError):
    """An update holding a shared type was to be checked before the nesting is built (a bug:
    the caller awaits `wait` first)."""


async def build(state: bytes) -> Nesting:
    """The nesting of the document `state`, built in a process of its own."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, Nesting.of, state)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class Depths:
    def __init__(
        self,
        nesting: Nesting | None,
        state: bytes,
        failed: Callable[[BaseException], None],
        project_id: str = "",
    ) -> None:
        """`nesting`, or (None) the nesting of `state` built in the background; `failed` is
        called if that build fails (the room cannot check depths, so it must fail)."""
        self._nesting = nesting
        self._unrecorded: list[UpdateSummary] = []
        self._failed = failed
        self._project_id = project_id
        self._task: asyncio.Task[Nesting] | None = None
        if nesting is None:
            self._task = asyncio.create_task(build(state))
            self._task.add_done_callback(self._built)

    def must_wait(self, summary: UpdateSummary) -> bool:
        """Whether `summary`'s update must wait for the nesting before it is applied."""
        return self._nesting is None and any(run.has_type for run in summary.runs)

    async def wait(self) -> None:
        """Until the nesting is built (or its build failed: the room fails)."""
        if self._task is not None and self._nesting is None:
            await asyncio.wait([self._task])

    def check(self, summary: UpdateSummary, max_depth: int) -> Resolved | None:
        """As `Nesting.check` of the update; None while the nesting is being built (the runs
        hold no shared type, or NotReady; items typed between two others and cut characters go
        unchecked meanwhile). MalformedUpdate if a type would nest deeper than `max_depth`, an
        item sits between items of two types, or the update cuts a character in two."""
        if self._nesting is not None:
            return self._nesting.check(summary, max_depth)
        if any(run.has_type for run in summary.runs):
            raise NotReady("an update holding a shared type waits for the nesting")
        return None

    def record_resolved(self, placed: Resolved | None, summary: UpdateSummary) -> None:
        """Keep what `check` found of an applied update (or the update, if it could not)."""
        if placed is not None and self._nesting is not None:
            self._nesting.record_resolved(placed)
        else:
            self.record(summary)

    def record(self, summary: UpdateSummary) -> None:
        """Keep an update applied without a check (logged by another node, or relogged)."""
        if self._nesting is not None:
            self._nesting.record(summary)
        else:
            self._unrecorded.append(summary)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _built(self, task: asyncio.Task[Nesting]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            extra = {"action": "collab.nesting_failed", "project": self._project_id}
            logger.error("the document's nesting could not be built", exc_info=error, extra=extra)
            self._failed(error)
            return
        nesting = task.result()
        for summary in self._unrecorded:
            nesting.record(summary)
        self._unrecorded = []
        self._nesting = nesting
