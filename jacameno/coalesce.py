"""Reads by key that many callers ask for at once, made as one read of all their keys.

Fifty sockets opening a project at the same moment each check their token, and each check reads
its user: fifty round trips (on SQLite, fifty hops through its one reader thread, one after the
other) on the path of every join. `Coalesced` makes them one: a key asked while no read is under
way is read at the event loop's next turn, with every key asked in the same turn; a key asked
while a read is under way waits for it to end and goes in the next read, with every key asked
meanwhile. So each read begins after every request it answers: a caller learns what it would
have learned from a read of its own (a user deleted before the request is never found), never
an answer older than its question. Nothing is cached.

Its callers wait as those of one shared computation do (`dbdrivers.shared.Waiters`): each on a
future of its own, woken in the turn the read ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from dbdrivers.shared import Waiters

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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
