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


async def _still_waiting(waiter: asyncio.Task[None], seconds: float) -> None:
    """Wait for `waiter` to end, up to `seconds`: it must not."""
    done, _ = await asyncio.wait({waiter}, timeout=seconds)
    assert not done, "the waiter gave up on a follower that moves"


async def test_a_waiter_stays_while_the_follower_moves_and_leaves_once_it_is_stuck() -> None:
    progress = Progress(0)
    loop = asyncio.get_running_loop()
    waiter = asyncio.create_task(progress.wait_for(10, stalled_after=0.2))
    started = loop.time()
    for position in range(1, 6):  # slow, but moving: 0.5 s in all, longer than stalled_after
        await _still_waiting(waiter, 0.1)
        await progress.advance(position)
    with pytest.raises(TimeoutError):  # stuck at 5: its own stalled_after ends it
        await waiter
    assert 0.5 + 0.2 - 0.01 <= loop.time() - started < 0.5 + 0.2 + 0.5
    assert progress.waiting == 0


async def test_a_moving_follower_reaches_the_position_of_a_patient_waiter() -> None:
    progress = Progress(0)
    waiter = asyncio.create_task(progress.wait_for(3, stalled_after=0.2))
    for position in range(1, 4):  # 0.3 s in all, longer than stalled_after
        await _still_waiting(waiter, 0.1)
        await progress.advance(position)
    await asyncio.wait_for(waiter, 1)
