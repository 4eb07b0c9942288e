"""Project commands take turns per project (jacameno.projects.locks): within one process, and
across processes of one Postgres database (two `PostgresTurns` with pools of their own, as two
nodes have)."""

from __future__ import annotations

import asyncio

import pytest

from jacameno.projects.locks import PostgresTurns, ProcessTurns, Turns


async def _check_turns(first: Turns, second: Turns) -> None:
    async with first.hold("project-a", 5):
        with pytest.raises(TimeoutError):
            async with second.hold("project-a", 0.1):
                pass
        async with second.hold("project-b", 5):  # another project is not held up
            pass
        waiting = asyncio.create_task(_hold_once(second, "project-a"))
    assert await asyncio.wait_for(waiting, 5) == "held"  # its turn came once the first ended


async def _hold_once(turns: Turns, key: str) -> str:
    async with turns.hold(key, 5):
        return "held"


async def test_one_process_takes_turns_per_key() -> None:
    turns = ProcessTurns()
    await _check_turns(turns, turns)


async def test_nodes_of_one_postgres_take_turns_per_key(fresh_pg_url: str) -> None:
    first = await PostgresTurns.open(fresh_pg_url)
    second = await PostgresTurns.open(fresh_pg_url)
    try:
        await _check_turns(first, second)
        await _check_turns(second, first)
    finally:
        await first.close()
        await second.close()


async def test_a_failure_in_the_turn_is_raised_as_it_is(fresh_pg_url: str) -> None:
    # The turn's transaction translates database failures; the command's own are not its.
    turns = await PostgresTurns.open(fresh_pg_url)
    try:
        with pytest.raises(TimeoutError):
            async with turns.hold("project-a", 5):
                raise TimeoutError("the projection did not answer")
        assert await asyncio.wait_for(_hold_once(turns, "project-a"), 5) == "held"  # released
    finally:
        await turns.close()
