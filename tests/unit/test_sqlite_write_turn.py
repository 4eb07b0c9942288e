"""The SQLite writers of one process take turns (dbdrivers.sqlite.WriteTurn): one at a time, the
log's commits before the read models' waiting transactions, a cancelled waiter never holding
the turn."""

from __future__ import annotations

import asyncio

import pytest

from dbdrivers.sqlite import WriteTurn, write_turn
from harness.waiting import eventually


async def _writer(turn: WriteTurn, name: str, log: list[str], urgent: bool = False) -> None:
    async with turn.hold(urgent=urgent):
        log.append(f"{name} in")
        await asyncio.sleep(0)
        log.append(f"{name} out")


async def test_one_writer_at_a_time_and_the_log_first() -> None:
    turn = WriteTurn()
    log: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with turn.hold():
            log.append("first in")
            await release.wait()
            log.append("first out")

    holder = asyncio.create_task(first())
    await eventually(lambda: log == ["first in"])
    waiting = [
        asyncio.create_task(_writer(turn, "model-1", log)),
        asyncio.create_task(_writer(turn, "model-2", log)),
        asyncio.create_task(_writer(turn, "commit", log, urgent=True)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *waiting)
    assert log == [
        "first in",
        "first out",
        "commit in",
        "commit out",
        "model-1 in",
        "model-1 out",
        "model-2 in",
        "model-2 out",
    ]


async def test_a_cancelled_waiter_leaves_the_turn_to_the_next() -> None:
    turn = WriteTurn()
    log: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with turn.hold():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    gone = asyncio.create_task(_writer(turn, "gone", log))
    after = asyncio.create_task(_writer(turn, "after", log))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await held
    await after
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert log == ["after in", "after out"]
    async with turn.hold():  # free again
        pass


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    turn = WriteTurn()
    log: list[str] = []
    release = asyncio.Event()
    waiters: list[asyncio.Task[None]] = []

    async def holder() -> None:
        async with turn.hold():
            await release.wait()
        waiters[0].cancel()  # in the same step as the hand-off: before the waiter has run

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(_writer(turn, "unlucky", log)))
    waiters.append(asyncio.create_task(_writer(turn, "after", log)))
    await asyncio.sleep(0)
    release.set()
    await held
    await waiters[1]
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert log == ["after in", "after out"]


async def test_each_file_has_its_own_turn() -> None:
    assert write_turn("/tmp/a.db") is write_turn("/tmp/./a.db")
    assert write_turn("/tmp/a.db") is not write_turn("/tmp/b.db")
