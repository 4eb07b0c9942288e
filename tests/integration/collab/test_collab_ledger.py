"""The early-broadcast ledger (jacameno.collab.ledger) on each kind of database it lives in: an
UNLOGGED table of Postgres, an SQLite file of its own. What one node records, any later one
recalls; records widen, expire, and a dead database drops them with a warning, never an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from jacameno.collab.ledger import EarlyLedger, Sent
from sqldb import Database, SQLiteDatabase, open_database

Opener = Callable[[float, Callable[[], float]], Awaitable[tuple[EarlyLedger, Database]]]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    """A fresh Postgres database, or None: SQLite."""
    return request.getfixturevalue("fresh_pg_url") if request.param == "postgres" else None


@pytest.fixture
async def opener(url: str | None, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a ledger (keeping records `keep` seconds, on `clock`), each on a connection of its
    own to one database per test, as each node has."""
    opened: list[Database] = []

    async def open_(keep: float, clock: Callable[[], float]) -> tuple[EarlyLedger, Database]:
        if url is None:
            db: Database = await SQLiteDatabase.open(tmp_path / "jacameno.db.early")
        else:
            db = await open_database(url)
        opened.append(db)
        return await EarlyLedger.open(db, keep_seconds=keep, clock=clock), db

    yield open_
    for db in opened:
        with contextlib.suppress(Exception):  # a test may have closed it
            await db.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_what_one_node_records_a_later_one_recalls(opener: Opener) -> None:
    clock = Clock()
    one, _ = await opener(60, clock)
    one.record("p1", Sent(7, 0, 5, "alice", "c1"))
    one.record("p1", Sent(7, 5, 9, "alice", "c1"))  # widened, in one row
    one.record("p1", Sent(7, 3, 4, "bob", "c2"))  # another user: a row of its own
    one.record("p2", Sent(8, 0, 1, "alice", "c1"))
    await one.flushed()
    one.record("p1", Sent(7, 9, 12, "alice", "c3"))  # a later turn widens it again
    await one.flushed()
    other, _ = await opener(60, clock)
    recalled = sorted(await other.recall("p1"), key=lambda s: s.user_id)
    assert recalled == [Sent(7, 0, 12, "alice", "c3"), Sent(7, 3, 4, "bob", "c2")]
    assert await other.recall("p2") == [Sent(8, 0, 1, "alice", "c1")]
    assert await other.recall("p3") == []
    assert one.dropped == 0


async def test_records_expire(opener: Opener) -> None:
    clock = Clock()
    ledger, _ = await opener(60, clock)
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
    opened[0][0].record("p", Sent(1, 0, 1, "alice", "c"))
    await opened[0][0].flushed()
    assert len(await opened[2][0].recall("p")) == 1


async def test_a_dead_database_drops_records_with_a_warning(
    opener: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    ledger, db = await opener(60, Clock())
    await db.close()
    with caplog.at_level(logging.WARNING, logger="jacameno.collab.ledger"):
        ledger.record("p", Sent(1, 0, 1, "alice", "c"))
        ledger.record("p", Sent(2, 0, 1, "alice", "c"))
        await ledger.flushed()  # no error: the broadcast it follows has happened
    assert ledger.dropped == 2
    assert [r for r in caplog.records if getattr(r, "action", "") == "collab.ledger_failed"]


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
