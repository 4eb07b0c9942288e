"""Project commands take turns per project (jacameno.projects.locks): within one process, and
across processes of one Postgres database (two `PostgresTurns` with pools of their own, as two
nodes have)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dbdrivers.postgres import server_settings
from jacameno.projects.locks import LOCK_CLASS, PostgresTurns, ProcessTurns, Turns
from sqldb import open_database


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


async def _idle_session_ended(url: str) -> None:
    """Return once Postgres has ended a session of the default settings (dbdrivers.postgres)
    left idle inside a transaction."""
    conn = await asyncpg.connect(url, server_settings=server_settings(url, "idle-probe"))
    ended = asyncio.Event()
    conn.add_termination_listener(lambda _: ended.set())
    try:
        await conn.execute("BEGIN")
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await conn.close()


async def test_a_turn_outlasts_the_sessions_idle_limit(fresh_pg_url: str) -> None:
    # A command may wait seconds for a read model inside its turn; the turn's transaction sits
    # idle meanwhile, longer than other sessions may (dbdrivers.postgres). It used to lose its
    # session there, and the command answered 503 for a change it had made.
    first = await PostgresTurns.open(fresh_pg_url)
    second = await PostgresTurns.open(fresh_pg_url)
    try:
        async with first.hold("project-a", 5):
            # idle since before a default session that Postgres has ended meanwhile
            await _idle_session_ended(fresh_pg_url)
            with pytest.raises(TimeoutError):  # still held: no other node has its turn
                async with second.hold("project-a", 0.2):
                    pass
        assert await asyncio.wait_for(_hold_once(second, "project-a"), 5) == "held"
    finally:
        await first.close()
        await second.close()


async def test_a_turn_lost_under_its_block_does_not_fail_what_the_block_did(
    fresh_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The session ends under the block (an operator ends it, the link drops): the lock went
    # with it, and the block's work stands; its caller is not told it failed.
    turns = await PostgresTurns.open(fresh_pg_url)
    other = await PostgresTurns.open(fresh_pg_url)
    probe = await open_database(fresh_pg_url, pool_size=1)
    done = []
    try:
        async with turns.hold("project-a", 5):
            await probe.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND classid = $1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                LOCK_CLASS,
            )
            async with other.hold("project-a", 5):  # the turn passed on with the session
                pass
            done.append("appended")
        assert done == ["appended"]
        assert any(r.message.startswith("a project's turn was lost") for r in caplog.records)
        assert await asyncio.wait_for(_hold_once(turns, "project-a"), 5) == "held"
    finally:
        await turns.close()
        await other.close()
        await probe.close()
