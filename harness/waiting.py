"""Waiting for a condition with a deadline, by polling: the only way tests and benchmarks wait
for something to happen (no fixed sleeps where time is not the behaviour under test)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

TIMEOUT = 10.0  # seconds: long enough for a loaded 2-core machine, short enough to fail a test
POLL = 0.02  # seconds between two checks of `wait_until`
POLL_FAST = 0.005  # of `eventually`, whose checks read memory only

Check = Callable[[], bool] | Callable[[], Awaitable[bool]]


class TimedOut(AssertionError):
    """The condition did not hold before the deadline (an AssertionError, so that pytest reports
    a failed expectation)."""


async def wait_until(
    check: Check,
    what: str = "the condition holds",
    timeout: float = TIMEOUT,
    *,
    interval: float = POLL,
) -> None:
    """Return as soon as `check()` (a plain or an async function) is true; raise TimedOut naming
    `what` after `timeout` seconds. An exception from `check` ends the wait with it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(interval)


async def eventually(check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until `check()` holds (polling every 5 ms), or fail after `timeout` seconds."""
    await wait_until(check, "the condition holds", timeout, interval=POLL_FAST)


def wait_blocking(
    check: Callable[[], bool], what: str, timeout: float = TIMEOUT, *, interval: float = 0.05
) -> None:
    """`wait_until` for code outside an event loop (starting a service from a sync fixture)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout} s waiting until {what}")
        time.sleep(interval)
