"""One computation awaited by many (dbdrivers.shared.Shared): run once, its result or error
reaches every caller, a caller that gives up leaves it to the others, and each caller is woken
in the turn of the event loop the computation ends in (where a shield wakes it a turn later)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest

from dbdrivers.shared import Shared
from harness.turns import Turns

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
    waiting = [asyncio.Event() for _ in range(20)]
    callers = [asyncio.create_task(_wait(shared, w)) for w in waiting]
    await _all_set(waiting)
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
    waiting = [asyncio.Event(), asyncio.Event()]
    impatient = asyncio.create_task(_wait(shared, waiting[0]))
    patient = asyncio.create_task(_wait(shared, waiting[1]))
    await _all_set(waiting)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):  # gives up at the loop's next turn
            await _wait(shared)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert not shared.task.done()
    release.set()
    assert await patient == "done"


async def test_a_failure_reaches_every_caller() -> None:
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        raise LookupError("gone")

    shared = Shared(work())
    waiting = [asyncio.Event() for _ in range(3)]
    callers = [asyncio.create_task(_wait(shared, w)) for w in waiting]
    await _all_set(waiting)
    release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, LookupError) for o in outcomes)
    with pytest.raises(LookupError):
        await shared.wait()


async def test_a_cancelled_run_cancels_its_callers() -> None:
    never = asyncio.Event()
    shared = Shared(never.wait())
    waiting = asyncio.Event()
    caller = asyncio.create_task(_wait(shared, waiting))
    await _all_set([waiting])
    shared.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_caller_wakes_in_the_turn_the_work_ends() -> None:
    turns = Turns()
    waiting = asyncio.Event()

    async def work() -> int:
        await waiting.wait()  # the caller waits before the work ends
        turns.mark()
        return 1

    shared = Shared(work())

    async def caller() -> None:
        await _wait(shared, waiting)
        turns.order.append("woken")

    async with asyncio.timeout(5):
        await asyncio.create_task(caller())
    await turns.settled()
    # Through `asyncio.shield` it would be woken only in the turn after.
    assert turns.order == [Turns.NEXT, "woken", Turns.AFTER]


async def _wait(shared: Shared[T], waiting: asyncio.Event | None = None) -> T:
    """`shared`'s outcome; `waiting` is set once this caller waits for it."""
    outcome = shared.wait()
    if waiting is not None:
        waiting.set()
    return await outcome


async def _all_set(events: list[asyncio.Event]) -> None:
    async with asyncio.timeout(5):
        for event in events:
            await event.wait()
