"""A statement on a pooled Postgres connection (dbdrivers.postgres.on_pool, under the SQL layer's
and the event store's reads): its caller resumes with the answer while the connection is given
back behind it, and the connection comes back whatever the statement's outcome."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dbdrivers.postgres import keep_session, on_pool
from harness.waiting import wait_until
from sqldb import DatabaseError, open_database


async def _pool(url: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=1, max_size=1, reset=keep_session)


async def _given_back_behind_the_caller(pool: asyncpg.Pool) -> None:
    """The pool's one connection is still out as its caller goes on (asyncpg's own release would
    have held the caller until it was back), and is back a moment later."""
    assert pool.get_idle_size() == 0
    await wait_until(lambda: pool.get_idle_size() == 1, "the connection is given back")


async def test_the_caller_has_its_answer_before_the_connection_is_back(fresh_pg_url: str) -> None:
    pool = await _pool(fresh_pg_url)
    try:
        assert await on_pool(pool, lambda conn: conn.fetchval("SELECT 41 + 1")) == 42
        await _given_back_behind_the_caller(pool)
    finally:
        await pool.close()


async def test_failed_and_cancelled_statements_give_their_connection_back(
    fresh_pg_url: str,
) -> None:
    pool = await _pool(fresh_pg_url)
    try:
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await on_pool(pool, lambda conn: conn.fetchval("SELEC 1"))
        sleeping = asyncio.create_task(
            on_pool(pool, lambda conn: conn.execute("SELECT pg_sleep(10)"))
        )
        watcher = await asyncpg.connect(fresh_pg_url)
        try:

            async def running() -> bool:  # cancelled while the server runs it
                return bool(
                    await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE state = 'active' AND query = 'SELECT pg_sleep(10)'"
                    )
                )

            await wait_until(running, "the statement runs")
        finally:
            await watcher.close()
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        # the one connection serves again: the cancelled statement was given back, not leaked
        async with asyncio.timeout(5):
            assert await on_pool(pool, lambda conn: conn.fetchval("SELECT 1")) == 1
    finally:
        await pool.close()


async def test_more_statements_than_connections_all_get_one(fresh_pg_url: str) -> None:
    db = await open_database(fresh_pg_url, pool_size=2)
    try:
        async with asyncio.timeout(10):
            found = await asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(50)))
        assert found == list(range(50))
        with pytest.raises(DatabaseError):
            await db.fetchval("SELECT 1/0")
        assert await db.fetchval("SELECT 2") == 2
    finally:
        await db.close()


async def test_a_transaction_goes_on_before_its_connection_is_back(fresh_pg_url: str) -> None:
    db = await open_database(fresh_pg_url, pool_size=1)
    try:
        await db.execute("CREATE TABLE t (n int PRIMARY KEY)")
        pool = db._pool  # type: ignore[attr-defined]
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
        await _given_back_behind_the_caller(pool)
        assert await db.fetchval("SELECT count(*) FROM t") == 1
        async with db.connection() as conn:
            assert await conn.fetchval("SELECT 3") == 3
        await _given_back_behind_the_caller(pool)
    finally:
        await db.close()


async def test_failed_and_cancelled_transactions_roll_back_and_serve_again(
    fresh_pg_url: str,
) -> None:
    db = await open_database(fresh_pg_url, pool_size=1)
    try:
        await db.execute("CREATE TABLE t (n int PRIMARY KEY)")

        async def duplicate() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (1)")
                await tx.execute("INSERT INTO t VALUES (1)")

        with pytest.raises(DatabaseError):
            await duplicate()
        started = asyncio.Event()

        async def slow() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (2)")
                started.set()
                await tx.execute("SELECT pg_sleep(10)")

        sleeping = asyncio.create_task(slow())
        async with asyncio.timeout(5):
            await started.wait()
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        # the pool's one connection serves again, and neither transaction left a row
        async with asyncio.timeout(5):
            assert await db.fetchval("SELECT count(*) FROM t") == 0
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (3)")
            assert await db.fetchval("SELECT array_agg(n) FROM t") == [3]
    finally:
        await db.close()
