"""The worker's child process (jacameno.ai.slot): answers, failures, a cancelled task killed, a
dead child reported; the next task after either runs in a new process."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator

import pytest

from jacameno.ai.slot import Slot, SlotDied, TaskFailed

TASKS = "tests.unit.slot_tasks:run"


@pytest.fixture
def slot() -> Iterator[Slot]:
    s = Slot(TASKS)
    yield s
    s.kill()


async def test_a_task_answers_with_its_progress_in_one_warm_process(slot: Slot) -> None:
    seen: list[float] = []
    first = await slot.run(("echo", 1), seen.append)
    second = await slot.run(("echo", 2), seen.append)
    assert (first["echo"], second["echo"], seen) == (1, 2, [0.5, 0.5])
    assert first["pid"] == second["pid"]


async def test_a_started_slot_runs_its_first_task_in_the_process_it_warmed(slot: Slot) -> None:
    await slot.start()
    [warm] = multiprocessing.active_children()
    assert (await slot.run(("echo", 1), lambda _: None))["pid"] == warm.pid


async def test_a_slot_whose_tasks_cannot_be_imported_fails_at_start() -> None:
    slot = Slot("tests.unit.no_such_tasks:run")
    try:
        with pytest.raises(SlotDied):
            await asyncio.wait_for(slot.start(), 30)
    finally:
        slot.kill()


async def test_a_task_that_raises_fails_and_the_process_stays(slot: Slot) -> None:
    with pytest.raises(TaskFailed, match="ValueError: no audio") as failed:
        await slot.run(("raise", "no audio"), lambda _: None)
    assert failed.value.kind == "ValueError"
    assert (await slot.run(("echo", 1), lambda _: None))["echo"] == 1


async def test_a_cancelled_task_is_killed_and_the_next_runs_in_a_new_process(slot: Slot) -> None:
    before = (await slot.run(("echo", 0), lambda _: None))["pid"]
    started = asyncio.Event()
    running = asyncio.create_task(slot.run(("sleep", 60), lambda _: started.set()))
    await asyncio.wait_for(started.wait(), 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    after = await asyncio.wait_for(slot.run(("echo", 1), lambda _: None), 30)
    assert after["pid"] != before


async def test_a_child_that_dies_is_reported(slot: Slot) -> None:
    with pytest.raises(SlotDied):
        await asyncio.wait_for(slot.run(("die", None), lambda _: None), 30)
    assert (await slot.run(("echo", 1), lambda _: None))["echo"] == 1
