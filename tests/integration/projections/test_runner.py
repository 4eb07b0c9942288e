"""The projection runner and the SQL layer, against SQLite and Postgres."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from eventstore import EventStore, NewEvent, RecordedEvent
from eventstore.memory import MemoryEventStore
from harness.waiting import wait_until
from projections.applier import Applier
from projections.projection import Target
from projections.runner import Projection, ProjectionRunner
from projections.tables import Names, live
from sqldb import Connection, Database, IntegrityError, open_database
from tests.integration.projections.support import (
    COUNTER,
    COUNTS,
    count,
    count_hops,
    count_into,
    create_counts,
    totals,
)


async def test_sql_layer_placeholders_rows_and_integrity_errors(db: Database) -> None:
    await db.execute("INSERT INTO test_counts VALUES ($1, $2, $3)", "a", 1, 2)
    row = await db.fetchrow("SELECT stream, n FROM test_counts WHERE stream = $1", "a")
    assert row is not None
    assert (row[0], row["n"]) == ("a", 1)
    assert await db.fetchval("SELECT n FROM test_counts WHERE stream = $1", "missing") is None
    with pytest.raises(IntegrityError):
        await db.execute("INSERT INTO test_counts VALUES ($1, $2, $3)", "a", 1, 2)


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO test_counts VALUES ($1, 1, 1)", "b")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await totals(db) == {}
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO test_counts VALUES ($1, $2, $3)", [("c", 1, 1), ("d", 2, 2)]
        )
    assert await totals(db) == {"c": 1, "d": 2}


async def test_runner_applies_only_its_types_exactly_once_across_restarts(
    store: EventStore, db: Database
) -> None:
    for i in range(30):
        await store.append(f"s{i % 3}", [NewEvent("counted"), NewEvent("ignored")])
    runner = ProjectionRunner(store, db, [COUNTER], batch_size=7)
    await runner.start()
    await runner.wait_for(await store.head_position())
    await runner.stop()
    assert await totals(db) == {"s0": 10, "s1": 10, "s2": 10}
    # a restarted runner resumes from the checkpoint: nothing applied twice
    result = await store.append("s0", [NewEvent("counted")])
    runner = ProjectionRunner(store, db, [COUNTER])
    await runner.start()
    await runner.wait_for(result.last_position)
    status = await runner.status()
    await runner.stop()
    assert await totals(db) == {"s0": 11, "s1": 10, "s2": 10}
    assert status[0].position == result.last_position
    assert status[0].lag_positions == 0


async def test_two_runners_on_one_database_apply_each_event_once(
    store: EventStore, db: Database
) -> None:
    runners = [ProjectionRunner(store, db, [COUNTER], batch_size=5) for _ in range(2)]
    for runner in runners:
        await runner.start()
    results = await asyncio.gather(
        *(store.append(f"s{i % 4}", [NewEvent("counted")]) for i in range(100))
    )
    head = max(r.last_position for r in results)
    for runner in runners:
        await runner.wait_for(head)
        await runner.stop()
    assert await totals(db) == {"s0": 25, "s1": 25, "s2": 25, "s3": 25}


async def test_a_checkpoint_moved_under_a_runner_is_read_again_and_nothing_applied_twice(
    store: EventStore,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An applier moves the checkpoint from where it last left it, on the condition that it is
    still there; another runner that moved it meanwhile (a standby that took over) makes it
    read the checkpoint under its lock and apply only what follows."""
    await ProjectionRunner(store, db, [COUNTER]).prepare()
    for i in range(9):
        await store.append(f"s{i % 3}", [NewEvent("counted")])
    log = await store.read_all(0, 100)
    first, second = (Applier(db, max_backoff=1.0, rate_window=10.0) for _ in range(2))
    target = Target.of("counter", COUNTER, live(COUNTER.tables))
    hops = count_hops(db, monkeypatch)
    assert await first.apply_until_done(target, log[:3]) == log[2].position
    assert await second.apply_until_done(target, log[:6]) == log[5].position
    # the first's checkpoint is stale: found so, read again, 7-9 applied, 4-6 not again
    caplog.set_level(logging.INFO, logger="projections.applier")
    assert await first.apply_until_done(target, log[3:]) == log[8].position
    moved = [r for r in caplog.records if getattr(r, "action", "") == "projection.moved_under"]
    assert len(moved) == 1
    assert await totals(db) == {"s0": 3, "s1": 3, "s2": 3}
    assert (
        await db.fetchval("SELECT position FROM projection_checkpoints WHERE name = 'counter'")
        == log[8].position
    )
    if hops is not None:  # SQLite: a batch from where the applier left it is one hop
        before = hops()
        await store.append("s0", [NewEvent("counted")])
        assert await first.apply_until_done(target, await store.read_all(log[8].position, 9))
        assert hops() - before == 1
        assert await totals(db) == {"s0": 4, "s1": 3, "s2": 3}


async def test_failing_batch_is_retried_never_skipped(store: EventStore, db: Database) -> None:
    failures = {"left": 2}

    async def flaky(conn: Connection, events: list[RecordedEvent]) -> None:
        await count(conn, events)
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("transient")

    runner = ProjectionRunner(
        store, db, [Projection("flaky", frozenset({"counted"}), lambda _: flaky)]
    )
    await runner.start()
    result = await store.append("s", [NewEvent("counted", json.dumps({}).encode())] * 3)
    await runner.wait_for(result.last_position, timeout=10)
    await runner.stop()
    assert failures["left"] == 0
    assert await totals(db) == {"s": 3}


async def test_wait_for_times_out_when_position_is_never_reached(
    store: EventStore, db: Database
) -> None:
    runner = ProjectionRunner(store, db, [COUNTER])
    await runner.start()
    with pytest.raises(TimeoutError):
        await runner.wait_for(10, timeout=0.2)
    await runner.stop()


async def test_batches_of_other_types_cost_no_transaction_but_still_count(
    store: EventStore, db: Database
) -> None:
    runner = ProjectionRunner(store, db, [COUNTER], idle_checkpoint_interval=3600)
    await runner.start()
    await runner.wait_for(0)
    before = await db.fetchval("SELECT updated_at FROM projection_checkpoints")
    result = await store.append("s", [NewEvent("ignored")] * 5)
    await runner.wait_for(result.last_position)  # read-your-writes holds without a commit
    assert await db.fetchval("SELECT position FROM projection_checkpoints") == 0
    assert await db.fetchval("SELECT updated_at FROM projection_checkpoints") == before
    counted = await store.append("s", [NewEvent("counted")])
    await runner.wait_for(counted.last_position)
    await runner.stop()
    assert await db.fetchval("SELECT position FROM projection_checkpoints") == counted.last_position
    assert await totals(db) == {"s": 1}


async def test_a_long_lull_never_delays_a_caller_waiting_for_its_write(
    store: EventStore, db: Database
) -> None:
    """Following a live log the runner rests up to its lull between short batches (the server's
    is JACAMENO_PROJECTIONS_LULL_MS), but a read-your-writes caller cuts every rest short: each
    of these writes is answered long before a 30 s lull."""
    runner = ProjectionRunner(store, db, [COUNTER], lull=30)
    await runner.start()
    await runner.wait_for(0)
    loop = asyncio.get_running_loop()
    for i in range(1, 4):  # the second and third come while the runner rests after a batch
        result = await store.append("s", [NewEvent("counted")])
        started = loop.time()
        await runner.wait_for(result.last_position)
        assert loop.time() - started < 2
        assert await totals(db) == {"s": i}
    await runner.stop()


class _Watching:
    """A fold that counts its events and records every event its `prepare` saw."""

    def __init__(self, names: Names) -> None:
        self.table = names["test_counts"]
        self.prepared: list[str] = []

    async def prepare(self, events: list[RecordedEvent]) -> None:
        self.prepared.extend(e.type for e in events)

    async def apply(self, conn: Connection, events: list[RecordedEvent]) -> None:
        await count_into(self.table, conn, events)


async def test_events_a_fold_only_prepares_are_shown_to_it_without_a_transaction(
    store: EventStore, db: Database
) -> None:
    folds: list[_Watching] = []

    def watching(names: Names) -> _Watching:
        folds.append(_Watching(names))
        return folds[-1]

    projection = Projection(
        "watching",
        frozenset({"counted"}),
        watching,
        tables=(COUNTS,),
        prepares=frozenset({"seen"}),
    )
    runner = ProjectionRunner(store, db, [projection], idle_checkpoint_interval=3600)
    await runner.start()
    await runner.wait_for(0)
    before = await db.fetchval("SELECT updated_at FROM projection_checkpoints")
    seen = await store.append("s", [NewEvent("seen"), NewEvent("ignored"), NewEvent("seen")])
    await runner.wait_for(seen.last_position)
    await wait_until(lambda: folds[0].prepared == ["seen", "seen"], "the fold saw them")
    assert await db.fetchval("SELECT updated_at FROM projection_checkpoints") == before
    mixed = await store.append("s", [NewEvent("seen"), NewEvent("counted")])
    await runner.wait_for(mixed.last_position)
    await runner.stop()
    assert folds[0].prepared == ["seen", "seen", "seen", "counted"]
    assert await totals(db) == {"s": 1}  # apply got the counted event only
    assert await db.fetchval("SELECT position FROM projection_checkpoints") == mixed.last_position


async def test_a_wait_for_named_projections_is_not_held_up_by_a_stalled_other(
    store: EventStore, db: Database
) -> None:
    release = asyncio.Event()

    async def stalled(conn: Connection, events: list[RecordedEvent]) -> None:
        # fails until released (waiting inside the transaction instead would hold SQLite's one
        # writer, and the other projection with it)
        if not release.is_set():
            raise RuntimeError("stalled")

    runner = ProjectionRunner(
        store,
        db,
        [COUNTER, Projection("stalled", frozenset({"counted"}), lambda _: stalled)],
        max_backoff=0.1,
    )
    await runner.start()
    result = await store.append("s", [NewEvent("counted")])
    await runner.wait_for(result.last_position, timeout=5, only=(COUNTER.name,))
    assert await totals(db) == {"s": 1}
    with pytest.raises(TimeoutError):
        await runner.wait_for(result.last_position, timeout=0.2)
    release.set()
    await runner.wait_for(result.last_position)
    await runner.stop()


class _Gated:
    """A two-step fold (projection.Fold) whose preparation waits for the test to let it go, so
    that the test can look at the database while a batch is being prepared."""

    def __init__(self, names: Names) -> None:
        self.table = names["test_counts"]
        self.prepared: list[int] = []
        self.preparing = asyncio.Event()
        self.release = asyncio.Event()

    async def prepare(self, events: list[RecordedEvent]) -> None:
        self.preparing.set()
        await self.release.wait()
        self.release.clear()
        self.prepared = [e.position for e in events]

    async def apply(self, conn: Connection, events: list[RecordedEvent]) -> None:
        assert self.prepared[-1] == events[-1].position
        await count_into(self.table, conn, events)


async def test_a_fold_prepares_each_batch_before_its_transaction(fresh_pg_url: str) -> None:
    """While a batch is being prepared, no transaction of the runner is open (Postgres ends one
    left idle for 2 s; SQLite would hold its one writer)."""
    store = MemoryEventStore()
    db = await open_database(fresh_pg_url)
    folds: list[_Gated] = []

    def gated(names: Names) -> _Gated:
        folds.append(_Gated(names))
        return folds[-1]

    await create_counts(db)
    slow = Projection("slow", frozenset({"counted"}), gated, tables=(COUNTS,))
    result = await store.append("s", [NewEvent("counted") for _ in range(3)])
    runner = ProjectionRunner(store, db, [slow], batch_size=2)
    await runner.start()
    try:
        for _ in range(2):  # batches of 2 and 1
            await wait_until(lambda: folds[0].preparing.is_set(), "a batch is being prepared")
            folds[0].preparing.clear()
            idle = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"
            )
            assert idle == 0
            folds[0].release.set()
        await runner.wait_for(result.last_position, timeout=20)
        assert await totals(db) == {"s": 3}
    finally:
        for fold in folds:  # a failed check must not leave a preparation waiting
            fold.release.set()
        await runner.stop()
        await db.close()
