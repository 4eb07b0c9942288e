"""The early-broadcast ledger (jacameno.collab.ledger) on each kind of database it lives in: an
UNLOGGED table of Postgres, an SQLite file of its own written in the event loop's thread. What one
node records, any later one recalls; records widen, expire, and a database that cannot be written
drops them with a warning, never an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from harness.waiting import wait_until
from jacameno.collab.ledger import EarlyLedger, Sent, _FileLedger
from sqldb import Database, DatabaseError, open_database

Opener = Callable[[float, Callable[[], float]], Awaitable[EarlyLedger]]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    """A fresh Postgres database, or None: SQLite."""
    return request.getfixturevalue("fresh_pg_url") if request.param == "postgres" else None


@pytest.fixture
async def opener(url: str | None, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a ledger (keeping records `keep` seconds, on `clock`) as each node opens its own:
    on a pool of its own to one Postgres database per test, or on the one SQLite file."""
    opened: list[EarlyLedger] = []
    pools: list[Database] = []

    async def open_(keep: float, clock: Callable[[], float]) -> EarlyLedger:
        if url is None:
            path = tmp_path / "jacameno.db.early"
            ledger = await EarlyLedger.open_file(path, keep_seconds=keep, clock=clock)
        else:  # as the server opens it: written through a database of its own
            pools.append(await open_database(url))
            writer = await open_database(url, pool_size=1)
            ledger = await EarlyLedger.open(
                pools[-1], keep_seconds=keep, clock=clock, writer=writer
            )
        opened.append(ledger)
        return ledger

    yield open_
    for ledger in opened:
        await ledger.close()
    for db in pools:
        await db.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_what_one_node_records_a_later_one_recalls(opener: Opener) -> None:
    clock = Clock()
    one = await opener(60, clock)
    one.record("p1", Sent(7, 0, 5, "alice", "c1"))
    one.record("p1", Sent(7, 5, 9, "alice", "c1"))  # widened, in one row
    one.record("p1", Sent(7, 3, 4, "bob", "c2"))  # another user: a row of its own
    one.record("p2", Sent(8, 0, 1, "alice", "c1"))
    await one.flushed()
    one.record("p1", Sent(7, 9, 12, "alice", "c3"))  # a later turn widens it again
    await one.flushed()
    other = await opener(60, clock)
    recalled = sorted(await other.recall("p1"), key=lambda s: s.user_id)
    assert recalled == [Sent(7, 0, 12, "alice", "c3"), Sent(7, 3, 4, "bob", "c2")]
    assert await other.recall("p2") == [Sent(8, 0, 1, "alice", "c1")]
    assert await other.recall("p3") == []
    assert one.dropped == 0


async def test_records_expire(opener: Opener) -> None:
    clock = Clock()
    ledger = await opener(60, clock)
    ledger.record("p", Sent(1, 0, 2, "alice", "c"))
    await ledger.flushed()
    clock.now += 61
    assert await ledger.recall("p") == []
    ledger.record("p", Sent(2, 0, 2, "bob", "c"))  # this write also deletes the expired row
    await ledger.flushed()
    clock.now -= 61  # had the old row survived, it would be recalled now
    assert [s.client for s in await ledger.recall("p")] == [2]


async def test_nodes_opening_together_create_the_table_once(opener: Opener) -> None:
    clock = Clock()
    opened = await asyncio.gather(*(opener(60, clock) for _ in range(3)))
    opened[0].record("p", Sent(1, 0, 1, "alice", "c"))
    await opened[0].flushed()
    assert len(await opened[2].recall("p")) == 1


@pytest.mark.parametrize("url", ["postgres"], indirect=True)
async def test_a_dead_database_drops_records_with_a_warning(
    url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    assert url is not None
    db = await open_database(url)
    ledger = await EarlyLedger.open(db, keep_seconds=60)
    await db.close()
    with caplog.at_level(logging.WARNING, logger="jacameno.collab.ledger"):
        ledger.record("p", Sent(1, 0, 1, "alice", "c"))
        ledger.record("p", Sent(2, 0, 1, "alice", "c"))
        await ledger.flushed()  # no error: the broadcast it follows has happened
    assert ledger.dropped == 2
    assert [r for r in caplog.records if getattr(r, "action", "") == "collab.ledger_failed"]
    with pytest.raises(DatabaseError):
        await ledger.recall("p")


async def test_a_file_that_cannot_be_written_drops_records_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jacameno.db.early"
    await (await EarlyLedger.open_file(path, keep_seconds=60)).close()

    def read_only() -> sqlite3.Connection:  # as on a file the node may no longer write
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    ledger = await _FileLedger.started(read_only, keep_seconds=60)
    with caplog.at_level(logging.WARNING, logger="jacameno.collab.ledger"):
        ledger.record("p", Sent(1, 0, 1, "alice", "c"))
        await ledger.flushed()
        ledger.record("p", Sent(2, 0, 1, "alice", "c"))
        ledger.record("p", Sent(3, 0, 1, "alice", "c"))
        await ledger.flushed()  # no error: the broadcast it follows has happened
    assert ledger.dropped == 3
    warned = [r for r in caplog.records if getattr(r, "action", "") == "collab.ledger_failed"]
    assert len(warned) == 1  # at most one per WARN_EVERY
    assert await ledger.recall("p") == []  # still readable
    await ledger.close()


async def test_a_file_that_is_not_a_database_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "jacameno.db.early"
    path.write_bytes(b"not a database, " * 512)
    with pytest.raises(DatabaseError):
        await EarlyLedger.open_file(path, keep_seconds=60)


async def test_a_file_that_cannot_be_opened_at_all_is_refused() -> None:
    def unopenable() -> sqlite3.Connection:
        raise PermissionError("the folder may not be written")

    with pytest.raises(PermissionError):
        await _FileLedger.started(unopenable, keep_seconds=60)


async def test_the_file_is_written_without_waiting_on_the_ledger(tmp_path: Path) -> None:
    """A record is written at the event loop's next turn: nobody needs to ask for it (the
    node may be killed at any moment after its broadcast)."""
    path = tmp_path / "jacameno.db.early"
    ledger = await EarlyLedger.open_file(path, keep_seconds=60)
    ledger.record("p", Sent(1, 0, 3, "alice", "c"))
    with contextlib.closing(sqlite3.connect(path)) as raw:
        await wait_until(
            lambda: bool(raw.execute("SELECT count(*) FROM collab_early").fetchone()[0]),
            "the record in the file",
        )
        assert raw.execute("SELECT clock_start, clock_end FROM collab_early").fetchall() == [(0, 3)]
    await ledger.close()
    await ledger.close()  # twice: nothing happens
    ledger.record("p", Sent(1, 3, 4, "alice", "c"))  # after close: dropped quietly


async def test_a_file_another_process_holds_locked_drops_a_batch_without_holding_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file is written in the event loop's thread: a writer lock held elsewhere (a second
    node on the same file) holds the loop up `BUSY_MS` at most, then that batch is dropped."""
    path = tmp_path / "jacameno.db.early"
    ledger = await EarlyLedger.open_file(path, keep_seconds=60)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the writer's lock, held
        with caplog.at_level(logging.WARNING, logger="jacameno.collab.ledger"):
            started = time.perf_counter()
            ledger.record("p", Sent(1, 0, 3, "alice", "c"))
            await ledger.flushed()
            waited = time.perf_counter() - started
        assert waited < 0.5  # BUSY_MS, with room for a slow machine
        assert ledger.dropped == 1
        assert [r for r in caplog.records if getattr(r, "action", "") == "collab.ledger_failed"]
        other.execute("COMMIT")
    ledger.record("p", Sent(1, 3, 4, "alice", "c"))
    await ledger.flushed()
    assert await ledger.recall("p") == [Sent(1, 3, 4, "alice", "c")]
    await ledger.close()


async def test_the_sqlite_ledger_is_a_file_of_its_own_that_outlives_its_node(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "jacameno.db.early"
    one = await EarlyLedger.open_file(path, keep_seconds=60)
    one.record("p", Sent(1, 0, 3, "alice", "c"))
    await one.flushed()
    # Not closed, as a killed process leaves it: the next node reads what it wrote.
    other = await EarlyLedger.open_file(path, keep_seconds=60)
    assert await other.recall("p") == [Sent(1, 0, 3, "alice", "c")]
    await other.close()
    await one.close()


@pytest.mark.parametrize("url", ["postgres"], indirect=True)
async def test_a_connection_broken_while_held_drops_one_batch_and_is_replaced(
    url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """The table ledger holds its writer's connection between records (LINGER): a connection
    ended meanwhile (Postgres restarted, an administrator) costs the next write, never the
    ledger."""
    assert url is not None
    db, writer = await open_database(url), await open_database(url, pool_size=1)
    held = await writer.fetchval("SELECT pg_backend_pid()")  # its one connection
    ledger = await EarlyLedger.open(db, keep_seconds=60, writer=writer)
    try:
        ledger.record("p", Sent(1, 0, 1, "alice", "c"))
        await ledger.flushed()
        assert await db.fetchval("SELECT pg_terminate_backend($1)", held)
        with caplog.at_level(logging.WARNING, logger="jacameno.collab.ledger"):
            ledger.record("p", Sent(2, 0, 1, "alice", "c"))
            await ledger.flushed()
        assert ledger.dropped == 1
        assert [r for r in caplog.records if getattr(r, "action", "") == "collab.ledger_failed"]
        ledger.record("p", Sent(3, 0, 1, "alice", "c"))
        await ledger.flushed()
        assert sorted(s.client for s in await ledger.recall("p")) == [1, 3]
    finally:
        await ledger.close()
        await db.close()


@pytest.mark.parametrize("url", ["postgres"], indirect=True)
async def test_reads_never_wait_for_the_held_connection_and_closing_gives_it_back(
    url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    assert url is not None
    db, writer = await open_database(url, pool_size=1), await open_database(url, pool_size=1)
    ledger = await EarlyLedger.open(db, keep_seconds=60, writer=writer)
    ledger.record("p", Sent(1, 0, 1, "alice", "c"))
    await ledger.flushed()
    with pytest.raises(TimeoutError):  # the flusher holds the writer's one connection for more
        await asyncio.wait_for(writer.fetchval("SELECT 1"), 0.2)
    # A room recalls while records keep coming: through the node's pool, at once.
    assert len(await asyncio.wait_for(ledger.recall("p"), 1)) == 1
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(ledger.close(), 2)  # the writer too, its connection given back
        await db.close()
    assert not [r for r in caplog.records if getattr(r, "action", "") == "sql.close_failed"]
