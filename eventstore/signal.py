"""Wake-ups for subscribers: a broadcast of the newest committed position."""

from __future__ import annotations

import asyncio


class CommitSignal:
    """Holds the highest position known to be committed and wakes everyone waiting for more.

    `publish` may be called with stale or repeated positions; the head only moves forward."""

    def __init__(self, head: int = 0) -> None:
        self.head = head
        self._event = asyncio.Event()

    def publish(self, head: int) -> None:
        if head <= self.head:
            return
        self.head = head
        event, self._event = self._event, asyncio.Event()
        event.set()

    def poke(self) -> None:
        """Wake every waiter without a known position (they will look for themselves)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until the head passes `after`, a poke, or `timeout` seconds; True if woken."""
        if self.head > after:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True
