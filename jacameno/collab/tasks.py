"""Helpers for the rooms' tasks: a bounded wait that does not wait for a cancelled task's
cleanup, and logging how a task ended at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from dbdrivers.shared import forget_outcome

logger = logging.getLogger("jacameno.collab.rooms")  # the rooms' log lines keep their logger

T = TypeVar("T")


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result if it finishes within `seconds`, else TimeoutError at once. Past the bound
    the work is cancelled but not waited for: a database driver's cleanup after a cancellation
    (resetting a pooled connection) can itself wait on a link that went silent."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(forget_outcome)
        raise TimeoutError(f"no answer within {seconds} s")
    return task.result()


def log_failure(
    task: asyncio.Task[Any], message: str, logged: tuple[type[BaseException], ...] = ()
) -> None:
    """Log (`collab.close_failed`) the failure a loading or closing task ended with at shutdown,
    unless it is of a kind already `logged`; a cancellation is no failure."""
    error = None if task.cancelled() else task.exception()
    if error is None or isinstance(error, logged):
        return
    logger.error(message, exc_info=error, extra={"action": "collab.close_failed"})
