"""One outcome that many callers await: a read of the log's new page that every subscription
woken by a commit asks for, a project's members that fifty joiners ask for at once, a room being
loaded. The callers wake without `asyncio.shield`: a shield wakes its caller one turn of the event
loop after the shared work ends (the inner future's callback sets the outer one, whose callback
then wakes the caller), and in a burst of joiners, or of subscriptions woken by one commit, each
turn is the whole burst's work. Each caller waits on a future of its own (`Waiters`), told in the
turn the work ends: a caller that gives up cancels its own future, never the work.

Below the event store and the SQL layer, which both share reads so, and imports nothing of ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Waiters(Generic[T]):
    """Callers waiting for one outcome, each on a future of its own (see the module's doc)."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[T]] = []

    def add(self) -> asyncio.Future[T]:
        """A future for one more caller: awaited, it gives the outcome `tell` or `fail` set."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        return future

    def tell(self, value: T) -> None:
        for future in self._take():
            future.set_result(value)

    def fail(self, error: BaseException) -> None:
        """Every caller still waiting gets `error` (a cancellation cancels them)."""
        for future in self._take():
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)

    def _take(self) -> list[asyncio.Future[T]]:
        futures, self._futures = self._futures, []
        return [future for future in futures if not future.done()]  # done: its caller gave up


class Shared(Generic[T]):
    """A computation that concurrent callers await (`wait`), run once in a task of its own:
    a caller that gives up leaves it to the others."""

    __slots__ = ("_waiters", "task")

    def __init__(self, work: Coroutine[Any, Any, T], name: str | None = None) -> None:
        self._waiters: Waiters[T] = Waiters()
        self.task: asyncio.Task[T] = asyncio.create_task(self._run(work), name=name)
        self.task.add_done_callback(forget_outcome)  # its callers were told its failure

    async def _run(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            value = await work
        except BaseException as exc:
            self._waiters.fail(exc)
            raise
        self._waiters.tell(value)
        return value

    def wait(self) -> Awaitable[T]:
        """The computation's result (or its error) once it ends."""
        if self.task.done():
            return self.task  # awaiting a finished task does not suspend, nor can it cancel it
        return self._waiters.add()


def forget_outcome(done: asyncio.Future[Any]) -> None:
    """A done callback for work nobody may await any more: its failure is no unhandled error."""
    if not done.cancelled():
        done.exception()  # retrieved: an abandoned read's or check's failure is no one's to handle
