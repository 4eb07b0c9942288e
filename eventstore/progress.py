"""How far a follower of the log has got, for those who wait on it.

A follower (a projection, a node's membership follower) reads the log and `advance`s; others
`wait_for` a position (read-your-writes). Between reads that brought it nothing to do, the
follower `rest`s up to `lull` seconds, unless someone is waiting: a log of mostly unrelated events
is then read in a few pages a second instead of one query per commit, and a waiter is never
kept waiting for the lull."""

from __future__ import annotations

import asyncio
import contextlib

# Read-your-writes: a follower that has not moved for STALLED_AFTER seconds is stuck, and its
# waiters get TimeoutError (a 503 to an HTTP caller); one that moves keeps them up to WAIT_LIMIT.
STALLED_AFTER = 5.0
WAIT_LIMIT = 30.0


class Progress:
    def __init__(self, position: int = 0, lull: float = 0.0) -> None:
        self.position = position
        self._lull = lull
        self._moved = asyncio.Condition()
        self._hurry = asyncio.Event()
        self.waiting = 0  # callers in wait_for now

    async def advance(self, position: int) -> None:
        async with self._moved:
            self.position = position
            self._moved.notify_all()

    async def wait_for(self, position: int, stalled_after: float | None = None) -> None:
        """Return once the follower has reached `position`. With `stalled_after`, TimeoutError
        once it has not moved for that many seconds: a follower that is slow (a loaded node,
        a long log of edits to read through) keeps its waiters, one that is stuck (a failing
        projection, a dead database) lets them go. Bound the whole wait with asyncio.timeout."""
        if self.position >= position:
            return
        self._hurry.set()
        self.waiting += 1
        try:
            async with self._moved:
                while self.position < position:
                    seen = self.position
                    async with asyncio.timeout(stalled_after):
                        await self._moved.wait_for(
                            lambda: self.position >= position or self.position != seen  # noqa: B023
                        )
        finally:
            self.waiting -= 1

    async def rest(self, lull: float | None = None) -> None:
        """Wait up to the lull (or `lull` seconds), less if someone waits for a position."""
        lull = self._lull if lull is None else lull
        if lull > 0 and not self.waiting:  # (a waiter that came before the last rest too)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(lull):
                    await self._hurry.wait()
        self._hurry.clear()
