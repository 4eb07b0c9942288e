"""SQLite reads tried on the event loop first (dbdrivers.sqlite.LoopFirstReader): a small read is
answered there, and one that runs past its budget, meets a lock or writes is made in the thread
instead, with the same answer; the loop is held no longer than the budget."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dbdrivers.sqlite import READS, LoopFirstReader, connect
from eventstore import NewEvent
from eventstore.sqlite import SQLiteEventStore
from jacameno.bootstrap.core import database, event_store
from jacameno.metrics import Metrics
from jacameno.settings import Settings, SettingsError
from sqldb import DatabaseError
from sqldb.sqlite import SQLiteDatabase

# Counts to 3 million in SQLite's virtual machine: hundreds of milliseconds, far past a budget.
_LONG = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)"
    " SELECT count(*) FROM n"
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    conn = connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(100)])
    conn.close()
    return tmp_path / "t.db"


@pytest.fixture
async def reader(path: Path) -> AsyncIterator[LoopFirstReader]:
    reader = LoopFirstReader("test-reader", lambda: connect(path), budget=0.002)
    yield reader
    await reader.close()


class _Calls:
    """A read that notes the thread each try ran in and how long it ran."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tries: list[tuple[bool, float]] = []  # (on the main thread, seconds)

    def __call__(self, conn: sqlite3.Connection) -> list[tuple[object, ...]]:
        began = time.perf_counter()
        try:
            return list(conn.execute(self.sql).fetchall())
        finally:
            on_main = threading.current_thread() is threading.main_thread()
            self.tries.append((on_main, time.perf_counter() - began))


def _since() -> Callable[[], dict[str, int]]:
    """The reads made since this call, by outcome (`dbdrivers.sqlite.READS`), those with none
    left out."""
    before = dataclasses.asdict(READS)

    def made() -> dict[str, int]:
        now = dataclasses.asdict(READS)
        return {
            outcome: now[outcome] - before[outcome]
            for outcome in now
            if now[outcome] != before[outcome]
        }

    return made


async def test_a_small_read_is_answered_on_the_loop(reader: LoopFirstReader) -> None:
    made = _since()
    read = _Calls("SELECT v FROM t WHERE n = 7")
    assert await reader.run(read) == [("v7",)]
    assert [on_main for on_main, _ in read.tries] == [True]
    assert made() == {"loop": 1}


async def test_a_read_past_its_budget_is_stopped_and_made_in_the_thread(
    reader: LoopFirstReader,
) -> None:
    made = _since()
    read = _Calls(_LONG)
    assert await reader.run(read) == [(3000000,)]
    (first_on_main, first), (second_on_main, second) = read.tries
    assert first_on_main
    assert not second_on_main
    assert first < 0.05 < second  # stopped near its 2 ms, where the whole read takes far longer
    assert made() == {"overran": 1}
    assert await reader.run(_Calls("SELECT count(*) FROM t")) == [(100,)]  # the loop's again
    assert made() == {"overran": 1, "loop": 1}


async def test_a_write_is_made_in_the_thread(reader: LoopFirstReader, path: Path) -> None:
    made = _since()
    write = _Calls("UPDATE t SET v = 'changed' WHERE n = 1 RETURNING v")
    assert await reader.run(write) == [("changed",)]
    assert [on_main for on_main, _ in write.tries] == [True, False]
    assert made() == {"refused": 1}
    check = sqlite3.connect(path)
    assert check.execute("SELECT v FROM t WHERE n = 1").fetchone() == ("changed",)
    check.close()


async def test_a_read_that_meets_a_lock_is_made_in_the_thread(reader: LoopFirstReader) -> None:
    # A reader of a WAL file meets a lock only in rare moments (another connection in exclusive
    # locking mode, a recovery), which a test cannot bring about while the reader is open: the
    # read itself answers busy where it runs on the loop, as SQLite would.
    def read(conn: sqlite3.Connection) -> str:
        if threading.current_thread() is threading.main_thread():
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise busy
        return str(conn.execute("SELECT v FROM t WHERE n = 2").fetchone()[0])

    made = _since()
    assert await reader.run(read) == "v2"
    assert made() == {"refused": 1}


async def test_a_wrong_statement_fails_as_it_did_in_the_thread(reader: LoopFirstReader) -> None:
    made = _since()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await reader.run(_Calls("SELECT * FROM missing"))
    assert made() == {}


async def test_no_budget_reads_in_the_thread_and_a_closed_reader_refuses(path: Path) -> None:
    reader = LoopFirstReader("test-reader", lambda: connect(path), budget=0)
    made = _since()
    read = _Calls("SELECT count(*) FROM t")
    assert await reader.run(read) == [(100,)]
    assert [on_main for on_main, _ in read.tries] == [False]
    assert made() == {"thread": 1}
    await reader.close()
    with pytest.raises(RuntimeError):
        await reader.run(read)


async def test_the_sql_layer_reads_on_the_loop(tmp_path: Path) -> None:
    db = await SQLiteDatabase.open(tmp_path / "db.sqlite")
    try:
        await db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
        await db.execute("INSERT INTO kv VALUES ($1, $2)", "a", 1)
        made = _since()
        assert await db.fetchval("SELECT v FROM kv WHERE k = $1", "a") == 1
        with pytest.raises(DatabaseError):
            await db.fetchval("SELECT nope FROM kv")
        assert made() == {"loop": 1}
    finally:
        await db.close()


async def test_the_event_store_reads_on_the_loop(fresh_sqlite_path: Path) -> None:
    store = await SQLiteEventStore.open(fresh_sqlite_path)
    try:
        await store.append("s-1", [NewEvent("a", b"1"), NewEvent("b", b"2")])
        made = _since()
        assert [e.type for e in await store.read_stream("s-1")] == ["a", "b"]
        snapshot, events = await store.read_from_snapshot("s-1", 10)
        assert snapshot is None
        assert [e.version for e in events] == [1, 2]
        assert made() == {"loop": 2}
    finally:
        await store.close()


async def test_where_reads_were_made_is_a_metric(reader: LoopFirstReader) -> None:
    metrics = Metrics()

    def counted(outcome: str) -> float:
        found = re.search(
            rf'^jacameno_sqlite_reads_total\{{outcome="{outcome}"\}} (\S+)$',
            metrics.render().decode(),
            re.MULTILINE,
        )
        assert found is not None
        return float(found.group(1))

    before = {outcome: counted(outcome) for outcome in ("loop", "overran", "refused")}
    await reader.run(_Calls("SELECT 1"))
    await reader.run(_Calls(_LONG))
    await reader.run(_Calls("UPDATE t SET v = 'w' WHERE n = 3 RETURNING v"))
    assert {outcome: counted(outcome) - before[outcome] for outcome in before} == {
        "loop": 1,
        "overran": 1,
        "refused": 1,
    }


@pytest.mark.parametrize(("budget", "where"), [("1000", "loop"), ("0", "thread")])
async def test_the_budget_is_a_setting(fresh_sqlite_path: Path, budget: str, where: str) -> None:
    settings = Settings.from_env(
        {
            "JACAMENO_DATABASE_URL": f"sqlite:///{fresh_sqlite_path}",
            "JACAMENO_SQLITE_LOOP_READ_US": budget,
        }
    )
    assert settings.sqlite_loop_reads == int(budget) / 1_000_000
    async with event_store(settings) as store, database(settings) as db:
        made = _since()
        await store.head_position()
        await db.fetchval("SELECT 1")
        assert made() == {where: 2}
    with pytest.raises(SettingsError, match="JACAMENO_SQLITE_LOOP_READ_US must be an integer"):
        Settings.from_env({"JACAMENO_SQLITE_LOOP_READ_US": "-1"})
