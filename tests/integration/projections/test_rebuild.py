"""Rebuilding a read model beside the live one, on SQLite and Postgres: readers never see it
empty or half built, writers go on, and the swapped-in model equals the one built from the log."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from eventstore import EventStore, NewEvent, RecordedEvent
from harness.databases import open_store
from harness.waiting import wait_until
from projections.failures import Apply
from projections.runner import Projection, ProjectionRunner, RebuildRunning
from projections.tables import Names, Table, qualified
from sqldb import Connection, Database, open_database
from tests.integration.projections.support import COUNTER, COUNTS, count_into, totals


async def checkpoint(db: Database, name: str) -> tuple[int, int] | None:
    row = await db.fetchrow(
        "SELECT position, schema_version FROM projection_checkpoints WHERE name = $1", name
    )
    return None if row is None else (int(row["position"]), int(row["schema_version"]))


async def test_a_rebuild_replaces_a_damaged_model_with_the_one_the_log_gives(
    store: EventStore, db: Database
) -> None:
    for i in range(40):
        await store.append(f"s{i % 4}", [NewEvent("counted"), NewEvent("ignored")])
    runner = ProjectionRunner(store, db, [COUNTER], batch_size=7)
    await runner.start()
    await runner.wait_for(await store.head_position())
    await db.execute("UPDATE test_counts SET n = 999 WHERE stream = 's1'")
    await db.execute("DELETE FROM test_counts WHERE stream = 's2'")
    position = await runner.rebuild(COUNTER.name)
    assert position == await store.head_position()
    assert await totals(db) == {"s0": 10, "s1": 10, "s2": 10, "s3": 10}
    assert await checkpoint(db, "counter__rebuild") is None  # its row went with the swap
    # the live runner goes on from the swapped-in model
    result = await store.append("s0", [NewEvent("counted")])
    await runner.wait_for(result.last_position)
    await runner.stop()
    assert await totals(db) == {"s0": 11, "s1": 10, "s2": 10, "s3": 10}
    assert await checkpoint(db, COUNTER.name) == (result.last_position, 1)


async def test_readers_never_see_an_empty_or_partial_model_while_writers_append(
    store: EventStore, db: Database
) -> None:
    for i in range(300):
        await store.append(f"s{i % 5}", [NewEvent("counted")])
    runner = ProjectionRunner(store, db, [COUNTER], batch_size=20)
    await runner.start()
    await runner.wait_for(await store.head_position())
    stop = asyncio.Event()
    seen: list[int] = []

    async def write() -> int:
        written = 0
        while not stop.is_set():
            await store.append(f"s{written % 5}", [NewEvent("counted")])
            written += 1
            await asyncio.sleep(0.002)
        return written

    async def read() -> None:
        while not stop.is_set():
            seen.append(int(await db.fetchval("SELECT coalesce(sum(n), 0) FROM test_counts")))
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    reader = asyncio.create_task(read())
    await runner.rebuild(COUNTER.name)
    await runner.rebuild(COUNTER.name)  # a second one, over the first one's tables
    stop.set()
    written = await writer
    await reader
    await runner.wait_for(await store.head_position())
    await runner.stop()
    assert len(seen) > 10
    assert min(seen) >= 300, "a reader saw an empty or partial model"
    assert seen == sorted(seen), "a reader saw the model go back"
    assert sum((await totals(db)).values()) == 300 + written


async def test_a_rebuild_refuses_to_run_twice_at_once_and_unknown_names(
    store: EventStore, db: Database
) -> None:
    release = asyncio.Event()

    def slow(names: Names) -> Apply:
        async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
            await release.wait()

        return apply

    projection = Projection("slow", frozenset({"counted"}), slow)
    await store.append("s", [NewEvent("counted")])
    runner = ProjectionRunner(store, db, [projection])
    first = asyncio.create_task(runner.rebuild("slow"))

    async def started() -> bool:
        return await checkpoint(db, "slow__rebuild") is not None

    await wait_until(started, "the first rebuild has started")
    with pytest.raises(RebuildRunning):
        await runner.rebuild("slow")
    with pytest.raises(KeyError):
        await runner.rebuild("nope")
    release.set()
    assert await first == 1


async def test_a_rebuild_that_died_is_started_over_by_the_next(
    store: EventStore, db: Database
) -> None:
    for i in range(50):
        await store.append(f"s{i % 2}", [NewEvent("counted")])
    batches = 0

    def stalling(names: Names) -> Apply:
        """The counter, whose second batch never ends: the rebuild dies halfway, whatever the
        machine's speed (a rebuild of 50 events can otherwise end before it is seen begun)."""
        table = names["test_counts"]

        async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
            nonlocal batches
            batches += 1
            if batches > 1:
                await asyncio.Event().wait()
            await count_into(table, conn, events)

        return apply

    stalled = Projection(COUNTER.name, COUNTER.event_types, stalling, tables=COUNTER.tables)
    task = asyncio.create_task(
        ProjectionRunner(store, db, [stalled], batch_size=5).rebuild(COUNTER.name)
    )

    async def halfway() -> bool:
        built = await checkpoint(db, "counter__rebuild")
        return batches > 1 and built is not None and built[0] > 0

    await wait_until(halfway, "the rebuild has applied a batch")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await totals(db) == {}  # the live model was never touched
    runner = ProjectionRunner(store, db, [COUNTER], batch_size=5)
    assert await runner.rebuild(COUNTER.name) == 50
    assert await totals(db) == {"s0": 25, "s1": 25}


WIDER = Table(
    "test_counts",
    {
        "stream": "text not null",
        "n": "bigint not null",
        "last_position": "bigint not null",
        "doubled": "bigint not null",
    },
    key=("stream",),
)


def doubling(names: Names) -> Apply:
    table = names["test_counts"]

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        for e in events:
            await conn.execute(
                f"INSERT INTO {table} (stream, n, last_position, doubled) VALUES ($1, 1, $2, 2)"
                f" ON CONFLICT (stream) DO UPDATE SET n = {table}.n + 1,"
                f" last_position = $2, doubled = {table}.doubled + 2",
                e.stream,
                e.position,
            )

    return apply


async def test_a_new_schema_version_rebuilds_on_start_while_the_old_model_serves(
    store: EventStore, db: Database
) -> None:
    for i in range(60):
        await store.append(f"s{i % 3}", [NewEvent("counted")])
    old = ProjectionRunner(store, db, [COUNTER])
    await old.start()
    await old.wait_for(await store.head_position())
    await old.stop()
    release = asyncio.Event()

    def gated(names: Names) -> Apply:
        apply = doubling(names)

        async def gate(conn: Connection, events: list[RecordedEvent]) -> None:
            await release.wait()
            await apply(conn, events)

        return gate

    v2 = Projection(COUNTER.name, COUNTER.event_types, gated, tables=(WIDER,), version=2)
    runner = ProjectionRunner(store, db, [v2])
    await runner.start()

    async def rebuilding() -> bool:
        states = [s.state for s in await runner.status(rebuilds=True)]
        return states == ["rebuilding", "rebuilding"]

    await wait_until(rebuilding, "the new version builds beside the old one")
    # the old model still serves, whole, while the new one builds beside it
    assert await totals(db) == {"s0": 20, "s1": 20, "s2": 20}
    release.set()
    await runner.wait_for(await store.head_position(), timeout=10)
    result = await store.append("s0", [NewEvent("counted")])
    await runner.wait_for(result.last_position)
    await runner.stop()
    rows = await db.fetch("SELECT stream, n, doubled FROM test_counts ORDER BY stream")
    assert [(r["stream"], r["n"], r["doubled"]) for r in rows] == [
        ("s0", 21, 42),
        ("s1", 20, 40),
        ("s2", 20, 40),
    ]
    assert await checkpoint(db, COUNTER.name) == (result.last_position, 2)


async def test_a_rebuild_carries_its_recorded_failures_over_to_the_live_model(
    store: EventStore, db: Database
) -> None:
    def picky(names: Names) -> Apply:
        table = names["test_counts"]

        async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
            for e in events:
                if e.stream == "bad":
                    raise ValueError("cannot fold it")
                await conn.execute(
                    f"INSERT INTO {table} (stream, n, last_position) VALUES ($1, 1, $2)"
                    f" ON CONFLICT (stream) DO UPDATE SET n = {table}.n + 1",
                    e.stream,
                    e.position,
                )

        return apply

    projection = Projection("picky", frozenset({"counted"}), picky, tables=(COUNTS,), policy="skip")
    await store.append("good", [NewEvent("counted")])
    await store.append("bad", [NewEvent("counted")])
    await store.append("good", [NewEvent("counted")])
    runner = ProjectionRunner(store, db, [projection])
    await runner.rebuild("picky")
    assert await totals(db) == {"good": 2}
    rows = await db.fetch("SELECT projection, stream FROM projection_failures")
    assert [(r["projection"], r["stream"]) for r in rows] == [("picky", "bad")]


SEEN = Table("test_seen", {"stream": "text not null"}, key=("stream",))


async def test_a_swap_gives_way_to_a_reader_that_holds_one_table_and_waits_for_another(
    fresh_pg_url: str,
) -> None:
    """A reader that read the second live table and then waits for the first, which the swap
    holds, would deadlock with the swap once the swap asks for the second (Postgres then fails
    the reader, the first to wait, after a second): the swap gives way instead, the reader gets
    its answer, and the swap goes through afterwards."""
    store = await open_store(fresh_pg_url)
    db = await open_database(fresh_pg_url, pool_size=8)
    folding, release = asyncio.Event(), asyncio.Event()

    def counting_and_seeing(names: Names) -> Apply:
        counts, seen = names["test_counts"], names["test_seen"]

        async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
            if counts.endswith("__rebuild"):
                folding.set()
                await release.wait()
            await count_into(counts, conn, events)
            for e in events:
                await conn.execute(
                    f"INSERT INTO {seen} (stream) VALUES ($1) ON CONFLICT DO NOTHING", e.stream
                )

        return apply

    def table(name: str) -> str:
        return qualified("postgres", name)

    async def waiting(mode: str) -> bool:
        # This database's locks only: other test workers share the cluster.
        found = await db.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = $1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            mode,
        )
        return bool(found)

    try:
        both = Projection(
            "counter", frozenset({"counted"}), counting_and_seeing, tables=(COUNTS, SEEN)
        )
        for i in range(20):
            await store.append(f"s{i % 4}", [NewEvent("counted")])
        runner = ProjectionRunner(store, db, [both])
        await runner.start()
        await runner.wait_for(await store.head_position())
        async with db.transaction() as reader:
            assert len(await reader.fetch(f"SELECT * FROM {table('test_seen')}")) == 4
            rebuild = asyncio.create_task(runner.rebuild("counter"))
            await folding.wait()
            # Another session holds the new first table, so that the swap (before the change)
            # waits there while it holds the live first table: the reader's wait comes first.
            async with db.transaction() as blocker:
                await blocker.fetch(f"SELECT * FROM {table('test_counts__rebuild')}")
                release.set()
                await wait_until(lambda: waiting("AccessExclusiveLock"), "the swap waits")
                read = asyncio.create_task(reader.fetch(f"SELECT n FROM {table('test_counts')}"))

                async def read_or_waits() -> bool:
                    return read.done() or await waiting("AccessShareLock")

                await wait_until(read_or_waits, "the reader has its answer or waits for it")
            assert sum(r["n"] for r in await read) == 20
        assert await rebuild == await store.head_position()
        await runner.stop()
        assert await totals(db) == {"s0": 5, "s1": 5, "s2": 5, "s3": 5}
    finally:
        await db.close()
        await store.close()
