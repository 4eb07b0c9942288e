"""The SQL layer's errors, on SQLite and Postgres: the driver's errors are translated, a bug in
the caller passes through as itself, and a failure of the database means the same to the SQL
layer as to the event store (one rule, `dbdrivers`): unavailable to both, or to neither."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from eventstore import StoreUnavailableError
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from harness.databases import with_lock_timeout
from harness.waiting import wait_until
from sqldb import (
    Connection,
    Database,
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    RowCountError,
    SQLiteDatabase,
    open_database,
)

TABLE = "CREATE TABLE IF NOT EXISTS test_items (id BIGINT PRIMARY KEY)"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    await database.execute(TABLE)
    yield database
    await database.close()


async def test_the_drivers_errors_are_translated(db: Database) -> None:
    await db.execute("INSERT INTO test_items VALUES ($1)", 1)
    with pytest.raises(IntegrityError):
        await db.execute("INSERT INTO test_items VALUES ($1)", 1)
    with pytest.raises(DatabaseError) as caught:
        await db.fetchval("SELEC 1")
    assert not isinstance(caught.value, DatabaseUnavailable)


async def test_a_held_connection_commits_each_statement_and_translates_errors(
    db: Database,
) -> None:
    async with db.connection() as conn:
        await conn.execute("INSERT INTO test_items VALUES ($1)", 10)
        # Each statement its own transaction: seen at once from elsewhere, and a failure
        # leaves the statements before it.
        assert await db.fetchval("SELECT count(*) FROM test_items") == 1
        with pytest.raises(IntegrityError):
            await conn.executemany("INSERT INTO test_items VALUES ($1)", [(11,), (10,)])
        await conn.execute("INSERT INTO test_items VALUES ($1)", 12)
    assert await db.fetchval("SELECT count(*) FROM test_items WHERE id IN (10, 12)") == 2


async def insert_then_fail(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO test_items VALUES ($1)", 2)
        assert await conn.fetchval("SELECT count(*) FROM test_items") == 1  # the insert ran
        await conn.fetchval(123)  # type: ignore[arg-type]


async def test_a_bug_in_the_caller_passes_through_as_itself(db: Database) -> None:
    with pytest.raises(TypeError):
        await db.fetchval(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await db.executemany("INSERT INTO test_items VALUES ($1)", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await insert_then_fail(db)
    assert await db.fetchval("SELECT count(*) FROM test_items") == 0


async def test_a_transaction_commits_its_statements_together_or_none_of_them(
    db: Database,
) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO test_items VALUES ($1)", 20)
        await conn.executemany("INSERT INTO test_items VALUES ($1)", [(21,), (22,)])
        # A statement that returns rows sees the transaction's writes before it; a read
        # outside it does not, until it commits.
        assert await conn.fetchval("SELECT count(*) FROM test_items") == 3
        assert await db.fetchval("SELECT count(*) FROM test_items") == 0
        await conn.execute("DELETE FROM test_items WHERE id = $1", 22)
    assert [r[0] for r in await db.fetch("SELECT id FROM test_items ORDER BY id")] == [20, 21]
    # A failing statement: the block raises its error (SQLite: from the next statement that
    # returns rows, or as the block exits), and the transaction leaves nothing behind.
    with pytest.raises(IntegrityError):
        await _insert(db, [23, 20])
    with pytest.raises(IntegrityError):
        await _insert(db, [24, 20], then=_count)
    assert await db.fetchval("SELECT count(*) FROM test_items") == 2
    # A block that catches a statement's error and goes on: the rest fails, nothing is kept.
    with pytest.raises(DatabaseError):
        await _insert(db, [26], then=_go_on_after_a_failure)
    assert await db.fetchval("SELECT count(*) FROM test_items") == 2
    # A block that fails before its statements ran: none of them reaches the database.
    with pytest.raises(RuntimeError):
        await _insert(db, [25], then=_fail)
    assert await db.fetchval("SELECT count(*) FROM test_items") == 2


async def test_a_write_that_must_change_so_many_rows_fails_its_transaction_otherwise(
    db: Database,
) -> None:
    """`execute_changing`: the conditional write of an optimistic writer (a projection's checkpoint
    moved only from where its runner last left it)."""
    await db.executemany("INSERT INTO test_items VALUES ($1)", [(1,), (2,)])
    move = "UPDATE test_items SET id = $2 WHERE id = $1"
    await db.execute_changing(1, move, 1, 10)  # outside a transaction, at once
    with pytest.raises(RowCountError) as caught:
        await db.execute_changing(1, move, 1, 11)  # gone: no row
    assert caught.value.changed == 0
    assert await _ids(db) == [2, 10]
    async with db.transaction() as conn:
        await conn.execute_changing(1, move, 10, 20)
        await conn.execute("INSERT INTO test_items VALUES ($1)", 30)
    assert await _ids(db) == [2, 20, 30]

    # In a transaction, the write that changed nothing rolls back all of it: the statements
    # before it and after it (on SQLite the error comes as the block exits).
    async def insert_around_a_stale_move(conn: Connection) -> None:
        await conn.execute("INSERT INTO test_items VALUES ($1)", 40)
        await conn.execute_changing(1, move, 10, 50)
        await conn.execute("INSERT INTO test_items VALUES ($1)", 60)

    async def read_after_a_stale_move(conn: Connection) -> None:
        await conn.execute_changing(1, move, 10, 50)
        await _count(conn)  # the error is raised here on SQLite, at once on Postgres

    for block in (insert_around_a_stale_move, read_after_a_stale_move):
        with pytest.raises(RowCountError):
            await _insert(db, [], then=block)
    with pytest.raises(RowCountError) as caught:  # more than one row is no better
        async with db.transaction() as conn:
            await conn.execute_changing(1, "UPDATE test_items SET id = id + 100 WHERE id > $1", 0)
    assert (caught.value.changed, caught.value.expected) == (3, 1)
    assert await _ids(db) == [2, 20, 30]
    # a write of several rows, each as last seen (a read model's rows moved on together)
    several = "UPDATE test_items SET id = id + 1 WHERE id IN ($1, $2)"
    async with db.transaction() as conn:
        await conn.execute_changing(2, several, 2, 20)
    assert await _ids(db) == [3, 21, 30]
    with pytest.raises(RowCountError) as caught:
        async with db.transaction() as conn:
            await conn.execute_changing(2, several, 3, 20)  # 20 moved on: one row of two
    assert (caught.value.changed, caught.value.expected) == (1, 2)
    assert await _ids(db) == [3, 21, 30]
    # counted whatever the statement begins with (Python's sqlite3 gives a statement that
    # begins with WITH no rowcount)
    with_first = (
        "WITH v(a) AS (SELECT CAST($1 AS BIGINT))"
        " UPDATE test_items SET id = id + 1 WHERE id IN (SELECT a FROM v)"
    )
    async with db.transaction() as conn:
        await conn.execute_changing(1, with_first, 30)
    assert await _ids(db) == [3, 21, 31]


async def _ids(db: Database) -> list[int]:
    return [r[0] for r in await db.fetch("SELECT id FROM test_items ORDER BY id")]


async def _count(conn: Connection) -> None:
    await conn.fetchval("SELECT count(*) FROM test_items")


async def _go_on_after_a_failure(conn: Connection) -> None:
    with contextlib.suppress(IntegrityError):
        await conn.execute("INSERT INTO test_items VALUES ($1)", 20)
        await _count(conn)
    await conn.execute("INSERT INTO test_items VALUES ($1)", 27)
    await _count(conn)


async def _fail(conn: Connection) -> None:
    raise RuntimeError("the caller's own failure")


async def _insert(
    db: Database, ids: list[int], then: Callable[[Connection], Awaitable[None]] | None = None
) -> None:
    async with db.transaction() as conn:
        for each in ids:
            await conn.execute("INSERT INTO test_items VALUES ($1)", each)
        if then is not None:
            await then(conn)


async def test_an_sqlite_transaction_goes_to_its_writer_thread_in_few_hops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN and the statements that return nothing go with the next statement that returns
    rows, or with COMMIT: each hop to the writer thread is a turn of the event loop."""
    db = await SQLiteDatabase.open(tmp_path / "hops.db")
    await db.execute(TABLE)
    writer = db._writer
    hops = 0
    run = writer.run

    async def counted(fn: Any) -> Any:
        nonlocal hops
        hops += 1
        return await run(fn)

    monkeypatch.setattr(writer, "run", counted)
    async with db.transaction() as conn:  # a projection's batch
        assert await conn.fetchval("SELECT count(*) FROM test_items") == 0
        await conn.executemany("INSERT INTO test_items VALUES ($1)", [(1,), (2,)])
        await conn.execute("UPDATE test_items SET id = id + 10 WHERE id = $1", 2)
    assert hops == 2
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO test_items VALUES ($1)", 3)
        await conn.execute("INSERT INTO test_items VALUES ($1)", 4)
    assert hops == 3
    async with db.transaction():
        pass
    assert hops == 3
    assert [r[0] for r in await db.fetch("SELECT id FROM test_items ORDER BY id")] == [1, 3, 4, 12]
    await db.close()


async def test_an_sqlite_transaction_cancelled_while_its_statements_run_rolls_back(
    tmp_path: Path,
) -> None:
    """Cancelled while a job of it runs in the writer thread (its insert, then a long read):
    the rollback is queued behind that job and sees the transaction; the next one begins."""
    db = await SQLiteDatabase.open(tmp_path / "cancel.db")
    await db.execute(TABLE)
    loop = asyncio.get_running_loop()
    in_the_thread = asyncio.Event()

    def began() -> int:  # called by the read, in the writer thread
        loop.call_soon_threadsafe(in_the_thread.set)
        return 1

    await db._writer.run(lambda c: c.create_function("began", 0, began))
    long_read = (
        "WITH RECURSIVE c(x) AS (SELECT began() UNION ALL SELECT x + 1 FROM c"
        " WHERE x < 2000000) SELECT count(*) FROM c"
    )

    async def insert_then_read() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO test_items VALUES ($1)", 1)
            await conn.fetchval(long_read)

    task = asyncio.create_task(insert_then_read())
    await in_the_thread.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _insert(db, [2])
    assert [r[0] for r in await db.fetch("SELECT id FROM test_items")] == [2]
    await db.close()


async def test_a_rollback_that_fails_is_logged_and_the_first_error_passes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_rollback(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    db = await SQLiteDatabase.open(tmp_path / "rollback.db")
    await db.execute(TABLE)
    monkeypatch.setattr("sqldb.sqlite._rollback", failing_rollback)
    with pytest.raises(TypeError):
        await insert_then_fail(db)
    monkeypatch.undo()
    failed = [r for r in caplog.records if getattr(r, "action", "") == "sql.rollback_failed"]
    assert len(failed) == 1
    assert "disk I/O error" in failed[0].__dict__["error"]
    await db.close()


async def test_a_file_that_is_not_a_database_is_unavailable_to_both_layers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database file" * 512)
    with pytest.raises(DatabaseUnavailable, match="not a database"):
        await SQLiteDatabase.open(path)
    with pytest.raises(StoreUnavailableError, match="not a database"):
        await SQLiteEventStore.open(path)


async def test_a_lock_wait_that_times_out_is_unavailable_to_both_layers(
    fresh_pg_url: str,
) -> None:
    url = with_lock_timeout(fresh_pg_url)
    db = await open_database(url)
    store = await PostgresEventStore.open(url)
    holder = await asyncpg.connect(fresh_pg_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE users, es_events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseUnavailable, match="LockNotAvailable"):
                await db.fetchval("SELECT count(*) FROM users")
            with pytest.raises(StoreUnavailableError, match="LockNotAvailable"):
                await store.stream_version("project-1")
    finally:
        await holder.close()
        await store.close()
        await db.close()


async def test_a_killed_connection_is_unavailable(fresh_pg_url: str) -> None:
    db = await open_database(fresh_pg_url, pool_size=1)
    killer = await asyncpg.connect(fresh_pg_url)
    try:
        pid = await db.fetchval("SELECT pg_backend_pid()")
        # killed while it runs a statement (killed between two, the pool may notice first and
        # hand out a new connection, which is right too, but not what this test is about)
        sleeping = asyncio.create_task(db.fetchval("SELECT pg_sleep(10)"))

        async def running() -> bool:
            state = await killer.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            return bool(state == "active")

        await wait_until(running, "the statement runs")
        await killer.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(DatabaseUnavailable):
            await sleeping
        assert await db.fetchval("SELECT 1") == 1  # the pool opens another connection
    finally:
        await killer.close()
        await db.close()
