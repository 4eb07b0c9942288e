"""Reads by key that many callers ask for at once, made as one read of all their keys.

Fifty sockets opening a project at the same moment each check their token, and each check reads
its user: fifty round trips (on SQLite, fifty hops through its one reader thread, one after the
other) on the path of every join. `Coalesced` makes them one: a key asked while no read is under
way is read at the event loop's next turn, with every key asked in the same turn; a key asked
while a read is under way waits for it to end and goes in the next read, with every key asked
meanwhile. So each read begins after every request it answers: a caller learns what it would
have learned from a read of its own (a user deleted before the request is never found), never
an answer older than its question. Nothing is cached.

`Shared` is the same for one computation (a project's members, a room's load) that concurrent
callers await. Both wake their callers without `asyncio.shield`: a shield wakes its caller one
turn of the event loop after the shared work ends (the inner future's callback sets the outer
one, whose callback then wakes the caller), and in a burst of joiners each turn is the whole
burst's handshake work. Each caller waits on a future of its own, told in the turn the work
ends: a caller that gives up cancels its own future, never the work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
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


class Coalesced(Generic[K, V]):
    """`get(key)` of concurrent callers through one `read_many(keys)` (which returns the values
    it found, by key) at a time. A failed read fails each of its callers with its error."""

    def __init__(self, read_many: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]) -> None:
        self._read_many = read_many
        self._keys: dict[K, None] = {}  # asked since the last read began, in order
        self._next: Waiters[Mapping[K, V]] | None = None  # their callers
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # reads made (for tests and metrics)

    async def get(self, key: K) -> V | None:
        """The value of `key` as a read that began after this call finds it; None if none."""
        if self._next is None:
            self._next = Waiters()
        answer = self._next.add()
        self._keys[key] = None
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="coalesced-reads")
        found = await answer
        return found.get(key)

    async def _run(self) -> None:
        waiting: Waiters[Mapping[K, V]] | None = None
        try:
            while self._next is not None:
                waiting, keys = self._next, list(self._keys)
                self._next, self._keys = None, {}
                self.reads += 1
                try:
                    found = await self._read_many(keys)
                except Exception as exc:
                    waiting.fail(exc)
                else:
                    waiting.tell(found)
        finally:
            self._task = None
            # Cancelled (the loop is closing): nobody is left waiting forever.
            for left in (waiting, self._next):
                if left is not None:
                    left.fail(asyncio.CancelledError())
            self._next, self._keys = None, {}


def forget_outcome(done: asyncio.Future[Any]) -> None:
    """A done callback for work nobody may await any more: its failure is no unhandled error."""
    if not done.cancelled():
        done.exception()  # retrieved: an abandoned read's or check's failure is no one's to handle
