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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from crdt.nesting import Nesting, Resolved
from crdt.update import Run, UpdateSummary

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
        self._unrecorded: list[Sequence[Run]] = []
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
        """As `Nesting.check` of the update's runs and items typed between two others; None
        while the nesting is being built (the runs hold no shared type, or NotReady, and the
        items typed between two others go unchecked). MalformedUpdate if a type would nest
        deeper than `max_depth`, or an item sits between items of two types."""
        runs = summary.runs
        if self._nesting is not None:
            return self._nesting.check(runs, max_depth, summary.between)
        if any(run.has_type for run in runs):
            raise NotReady("an update holding a shared type waits for the nesting")
        return None

    def record_resolved(self, placed: Resolved | None, runs: Sequence[Run]) -> None:
        """Keep the runs of an applied update that `check` placed (or could not yet)."""
        if placed is not None and self._nesting is not None:
            self._nesting.record_resolved(placed)
        else:
            self.record(runs)

    def record(self, runs: Sequence[Run]) -> None:
        """Keep the runs of an update applied without a check (logged by another node, or
        relogged)."""
        if self._nesting is not None:
            self._nesting.record(runs)
        else:
            self._unrecorded.append(runs)

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
        for runs in self._unrecorded:
            nesting.record(runs)
        self._unrecorded = []
        self._nesting = nesting
