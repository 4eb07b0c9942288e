"""A follower's progress: waiters wake when it reaches their position and give up once it is
stuck (not merely slow), and its rest between reads is cut short by a waiter."""

from __future__ import annotations

import asyncio

import pytest

from eventstore.progress import Progress


async def test_a_waiter_wakes_when_the_position_is_reached() -> None:
    progress = Progress(3)
    await progress.wait_for(3)  # already there
    waiter = asyncio.create_task(progress.wait_for(7))
    await progress.advance(5)
    await asyncio.sleep(0)
    assert not waiter.done()
    await progress.advance(7)
    await asyncio.wait_for(waiter, 1)


async def test_the_rest_lasts_the_lull_when_nobody_waits() -> None:
    progress = Progress(0, lull=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await progress.rest()
    assert loop.time() - started >= 0.045


async def test_a_waiter_cuts_the_rest_short() -> None:
    progress = Progress(0, lull=10)
    waiter = asyncio.create_task(progress.wait_for(1))
    await asyncio.sleep(0)
    await asyncio.wait_for(progress.rest(), 1)
    await progress.advance(1)
    await asyncio.wait_for(waiter, 1)
    with pytest.raises(TimeoutError):  # the hurry was used up: the next rest is whole
        await asyncio.wait_for(progress.rest(), 0.05)


async def test_a_waiter_stays_while_the_follower_moves_and_leaves_once_it_is_stuck() -> None:
    progress = Progress(0)
    loop = asyncio.get_running_loop()
    waiter = asyncio.create_task(progress.wait_for(10, stalled_after=0.2))
    started = loop.time()
    for position in range(1, 6):  # slow, but moving: 0.5 s in all, longer than stalled_after
        await asyncio.sleep(0.1)
        await progress.advance(position)
    assert not waiter.done()
    with pytest.raises(TimeoutError):  # stuck at 5
        await waiter
    assert loop.time() - started >= 0.5 + 0.2 - 0.01
    assert progress.waiting == 0


async def test_a_moving_follower_reaches_the_position_of_a_patient_waiter() -> None:
    progress = Progress(0)
    waiter = asyncio.create_task(progress.wait_for(3, stalled_after=0.2))
    for position in range(1, 4):
        await asyncio.sleep(0.1)
        await progress.advance(position)
    await asyncio.wait_for(waiter, 1)
