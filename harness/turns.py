"""Which turn of the event loop something happens in: for tests that a waiter is woken in the
turn its work ends, not a turn later (as through `asyncio.shield`)."""

from __future__ import annotations

import asyncio


class Turns:
    """`mark()`, called in the work's last step, notes "the next turn" in the turn after that
    step and "the turn after" in the one after it; the test notes its waiter's wake-up in
    `order` too, and `settled()` waits for the second mark. Woken in the turn the work ends,
    the waiter's note comes between the two."""

    NEXT, AFTER = "the next turn", "the turn after"

    def __init__(self) -> None:
        self.order: list[str] = []
        self._after = asyncio.Event()

    def mark(self) -> None:
        asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        self.order.append(self.NEXT)
        asyncio.get_running_loop().call_soon(self._then)

    def _then(self) -> None:
        self.order.append(self.AFTER)
        self._after.set()

    async def settled(self, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            await self._after.wait()
