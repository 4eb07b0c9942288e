"""The harness's waiting: a condition that holds ends the wait at once, one that never holds
fails it after the deadline naming what was awaited, and async checks are awaited."""

from __future__ import annotations

import time

import pytest

from harness.waiting import TimedOut, eventually, wait_blocking, wait_until


async def test_a_condition_that_holds_ends_the_wait_at_once() -> None:
    checks = 0

    def check() -> bool:
        nonlocal checks
        checks += 1
        return checks == 3

    await wait_until(check, "the third check", 5, interval=0)
    assert checks == 3


async def test_an_async_check_is_awaited() -> None:
    async def holds() -> bool:
        return True

    await wait_until(holds, "an async check holds", 5)


async def test_a_condition_that_never_holds_fails_after_the_deadline_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(TimedOut, match="the impossible"):
        await wait_until(lambda: False, "the impossible", 0.05, interval=0.01)
    assert time.monotonic() - started >= 0.05
    with pytest.raises(AssertionError):  # pytest reports it as a failed expectation
        await eventually(lambda: False, 0.01)


async def test_an_error_in_the_check_ends_the_wait_with_it() -> None:
    def broken() -> bool:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        await wait_until(broken, "never", 5)


def test_the_blocking_wait_works_outside_an_event_loop() -> None:
    wait_blocking(lambda: True, "it holds", 1)
    with pytest.raises(TimedOut, match="never"):
        wait_blocking(lambda: False, "never", 0.02, interval=0.01)
