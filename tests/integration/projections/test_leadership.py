"""One active runner per projection across processes: on Postgres the others stand by and take
over within seconds of the holder's death (SIGKILL included); on SQLite and Postgres alike a
runner killed mid-batch and restarted has counted nothing twice and skipped nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from eventstore import EventStore, NewEvent
from harness.waiting import wait_until
from projections.runner import ProjectionRunner
from sqldb import Database
from sqldb.locks import PostgresLocks, open_locks
from tests.integration.projections.support import COUNTER, totals

EVENTS = 1500


async def fill(store: EventStore) -> int:
    for start in range(0, EVENTS, 100):
        await store.append(f"s{start % 3}", [NewEvent("counted")] * 100)
    return await store.head_position()


async def committed(db: Database) -> bool:
    return await applied(db) > 0


async def applied(db: Database) -> int:
    position = await db.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1", COUNTER.name
    )
    return 0 if position is None else int(position)


class RunnerProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.states: list[str] = []
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.states.append(line.decode().strip())

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._reading


@pytest.fixture
async def runner_process(database_url: str) -> AsyncIterator[RunnerProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.projections.runner_process",
        database_url,
        stdout=asyncio.subprocess.PIPE,
    )
    running = RunnerProcess(proc)
    yield running
    if proc.returncode is None:
        await running.kill()


async def test_a_runner_sigkilled_mid_batch_and_restarted_counts_each_event_once(
    store: EventStore, db: Database, database_url: str, runner_process: RunnerProcess
) -> None:
    head = await fill(store)
    await wait_until(lambda: "following" in runner_process.states, "the process follows")
    await wait_until(lambda: committed(db), "the process has committed a batch", interval=0.005)
    await runner_process.kill()
    killed_at = await applied(db)
    assert 0 < killed_at < head, "the kill did not land while the log was being folded"
    restarted = ProjectionRunner(store, db, [COUNTER], locks=open_locks(database_url))
    await restarted.start()
    await restarted.wait_for(head, timeout=30)
    await restarted.stop()
    assert sum((await totals(db)).values()) == EVENTS


async def test_a_cancelled_runner_restarted_counts_each_event_once(
    store: EventStore, db: Database
) -> None:
    head = await fill(store)
    first = ProjectionRunner(store, db, [COUNTER], batch_size=10)
    await first.start()
    await wait_until(lambda: committed(db), "a batch is committed", interval=0.001)
    await first.stop()
    assert await applied(db) < head
    second = ProjectionRunner(store, db, [COUNTER])
    await second.start()
    await second.wait_for(head, timeout=30)
    await second.stop()
    assert sum((await totals(db)).values()) == EVENTS


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_standby_takes_over_within_seconds_of_the_holders_sigkill(
    store: EventStore, db: Database, database_url: str, runner_process: RunnerProcess
) -> None:
    head = await fill(store)
    await wait_until(lambda: "following" in runner_process.states, "the process follows")
    standby = ProjectionRunner(
        store, db, [COUNTER], locks=PostgresLocks(database_url), standby_poll=0.2
    )
    await standby.start()
    try:
        await wait_until(lambda: _state(standby, "standby"), "the second runner stands by")
        await runner_process.kill()
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await wait_until(
            lambda: _state(standby, "following"), "the standby leads", timeout=5, interval=0.01
        )
        took_over = loop.time() - killed
        await standby.wait_for(head, timeout=30)
    finally:
        await standby.stop()
    assert took_over < 3, took_over
    assert sum((await totals(db)).values()) == EVENTS


async def _state(runner: ProjectionRunner, state: str) -> bool:
    return [s.state for s in await runner.status()] == [state]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_runners_on_two_nodes_have_one_leader_and_both_read_their_writes(
    store: EventStore, db: Database, database_url: str
) -> None:
    runners = [
        ProjectionRunner(store, db, [COUNTER], locks=PostgresLocks(database_url), standby_poll=0.1)
        for _ in range(2)
    ]
    for runner in runners:
        await runner.start()
    try:
        await wait_until(lambda: _leaders(runners, 1), "one runner leads", timeout=5)
        for i in range(20):
            result = await store.append(f"s{i % 2}", [NewEvent("counted")])
            for runner in runners:  # read-your-writes on the standby too
                await runner.wait_for(result.last_position, timeout=5)
        states = sorted([s.state for r in runners for s in await r.status()])
        assert states == ["following", "standby"]
        leading = [await _state(r, "following") for r in runners]
        leader, other = runners if leading[0] else runners[::-1]
        await leader.stop()  # a clean stop releases the lock at once
        await wait_until(lambda: _state(other, "following"), "the other leads", timeout=5)
        result = await store.append("s0", [NewEvent("counted")])
        await other.wait_for(result.last_position, timeout=5)
    finally:
        for runner in runners:
            await runner.stop()
    assert await totals(db) == {"s0": 11, "s1": 10}


async def _leaders(runners: list[ProjectionRunner], n: int) -> bool:
    states = [s.state for r in runners for s in await r.status()]
    return states.count("following") == n


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_holder_whose_lock_connection_dies_stands_by_and_another_leads(
    store: EventStore, db: Database, database_url: str
) -> None:
    def runner() -> ProjectionRunner:
        locks = PostgresLocks(database_url, check_interval=0.2)
        return ProjectionRunner(store, db, [COUNTER], locks=locks, standby_poll=0.1)

    first, second = runner(), runner()
    await first.start()
    await wait_until(lambda: _state(first, "following"), "the first leads")
    await second.start()
    try:
        killed = await db.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())"
        )
        assert killed
        await wait_until(lambda: _state(second, "following"), "the second leads", timeout=5)
        await wait_until(lambda: _state(first, "standby"), "the first stands by", timeout=5)
        head = await fill(store)
        await first.wait_for(head, timeout=30)
    finally:
        await first.stop()
        await second.stop()
    assert sum((await totals(db)).values()) == EVENTS


async def test_a_runner_that_never_leads_reads_its_writes_from_the_leaders_checkpoint(
    store: EventStore, db: Database, database_url: str
) -> None:
    """`leads=False` (a serving node with JACAMENO_PROJECTIONS=standby): it applies nothing
    even when no one leads, and its waits end once a leader's checkpoint has the position."""
    standby = ProjectionRunner(
        store, db, [COUNTER], locks=open_locks(database_url), standby_poll=0.1, leads=False
    )
    await standby.start()
    leader = ProjectionRunner(store, db, [COUNTER], locks=open_locks(database_url))
    try:
        head = await fill(store)
        with pytest.raises(TimeoutError):  # nobody folds: it does not move
            await standby.wait_for(head, timeout=0.5)
        assert await applied(db) == 0
        assert await _state(standby, "standby")
        await leader.start()
        await standby.wait_for(head, timeout=30)
    finally:
        await leader.stop()
        await standby.stop()
    assert sum((await totals(db)).values()) == EVENTS
