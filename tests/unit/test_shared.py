"""One computation awaited by many (jacameno.coalesce.Shared): run once, its result or error
reaches every caller, a caller that gives up leaves it to the others, and each caller is woken
in the turn of the event loop the computation ends in (where a shield wakes it a turn later)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest

from jacameno.coalesce import Shared

T = TypeVar("T")


async def test_callers_share_one_run_and_its_result() -> None:
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    shared = Shared(work())
    callers = [asyncio.create_task(_wait(shared)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == [42] * 20
    assert runs == 1
    assert await shared.wait() == 42  # once it ended, at once


async def test_a_caller_that_gives_up_leaves_the_work_to_the_others() -> None:
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    shared = Shared(work())
    impatient = asyncio.create_task(_wait(shared))
    patient = asyncio.create_task(_wait(shared))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await _wait(shared)
    impatient.cancel()
    await asyncio.sleep(0)
    assert not shared.task.done()
    release.set()
    assert await patient == "done"
    assert impatient.cancelled()


async def test_a_failure_reaches_every_caller() -> None:
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        raise LookupError("gone")

    shared = Shared(work())
    callers = [asyncio.create_task(_wait(shared)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, LookupError) for o in outcomes)
    with pytest.raises(LookupError):
        await shared.wait()


async def test_a_cancelled_run_cancels_its_callers() -> None:
    shared = Shared(asyncio.sleep(10))
    caller = asyncio.create_task(_wait(shared))
    await asyncio.sleep(0)
    shared.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_caller_wakes_in_the_turn_the_work_ends() -> None:
    loop = asyncio.get_running_loop()
    order: list[str] = []

    def next_turn() -> None:
        order.append("the next turn")
        loop.call_soon(order.append, "the turn after")

    async def work() -> int:
        await asyncio.sleep(0)
        loop.call_soon(next_turn)  # runs in the turn after this step, as the caller's wake-up
        return 1

    shared = Shared(work())

    async def caller() -> None:
        await shared.wait()
        order.append("woken")

    await asyncio.create_task(caller())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Through `asyncio.shield` it would be woken only in the turn after.
    assert order[:2] == ["the next turn", "woken"]


async def _wait(shared: Shared[T]) -> T:
    return await shared.wait()
