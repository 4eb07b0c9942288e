"""A projection that raises on one event type follows its policy: `stop` stalls visibly and
resumes when the cause goes; `skip` records the bad events once and goes on; `retry` applies the
recorded failures again. On SQLite and Postgres."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventstore import AppendResult, EventStore, NewEvent, RecordedEvent
from harness.waiting import wait_until
from projections.runner import Policy, Projection, ProjectionRunner
from sqldb import Connection, Database
from tests.integration.projections.support import count, totals


@dataclass
class Picky:
    """Counts every event, but raises on `bad` ones while `broken`."""

    broken: bool = True
    calls: list[int] = field(default_factory=list)

    async def apply(self, conn: Connection, events: list[RecordedEvent]) -> None:
        self.calls.extend(e.position for e in events)
        await count(conn, events)
        if self.broken and any(e.type == "bad" for e in events):
            raise ValueError("cannot fold a bad event")

    def projection(self, policy: Policy) -> Projection:
        return Projection("picky", frozenset({"good", "bad"}), lambda _: self.apply, policy=policy)


MIXED = [NewEvent(t) for t in ("good", "bad", "good", "bad", "good")]


async def failure_rows(db: Database) -> list[tuple[int, str, int, str, str, int]]:
    rows = await db.fetch(
        "SELECT position, stream, version, type, error, traceback, attempts"
        " FROM projection_failures WHERE projection = 'picky' ORDER BY position"
    )
    for r in rows:
        assert "ValueError: cannot fold a bad event" in r["traceback"]
    return [
        (r["position"], r["stream"], r["version"], r["type"], r["error"], r["attempts"])
        for r in rows
    ]


async def skipping(
    store: EventStore, db: Database, picky: Picky
) -> tuple[ProjectionRunner, AppendResult]:
    """A runner of `picky` with the `skip` policy, started, once it has followed MIXED."""
    runner = ProjectionRunner(store, db, [picky.projection("skip")])
    await runner.start()
    result = await store.append("s", MIXED)
    await runner.wait_for(result.last_position)
    return runner, result


async def test_stop_stalls_visibly_retries_and_resumes_when_the_cause_goes(
    store: EventStore, db: Database
) -> None:
    picky = Picky()
    runner = ProjectionRunner(store, db, [picky.projection("stop")], max_backoff=0.05)
    await runner.start()
    result = await store.append("s", MIXED)

    async def failing() -> bool:
        (status,) = await runner.status()
        return status.state == "failing" and len(picky.calls) >= 3 * len(MIXED)

    await wait_until(failing, "the projection has failed the batch three times")
    (status,) = await runner.status()
    assert status.position == 0
    assert status.lag_positions == result.last_position
    assert status.last_error == "ValueError: cannot fold a bad event"
    assert status.failing_since is not None
    assert status.seconds_behind > 0
    row = await db.fetchrow("SELECT failing_since, last_error FROM projection_checkpoints")
    assert row is not None
    assert row["last_error"] == status.last_error
    assert await totals(db) == {}  # a failed batch leaves nothing behind
    picky.broken = False
    await runner.wait_for(result.last_position)
    (status,) = await runner.status()
    await runner.stop()
    assert (status.state, status.last_error, status.failures) == ("following", None, 0)
    assert (status.lag_positions, status.seconds_behind) == (0, 0.0)
    assert status.events_per_second is not None
    assert status.events_per_second > 0
    assert await totals(db) == {"s": 5}
    row = await db.fetchrow("SELECT failing_since, last_error FROM projection_checkpoints")
    assert row is not None
    assert (row["failing_since"], row["last_error"]) == (None, None)


async def test_skip_records_each_bad_event_once_and_applies_the_rest_once(
    store: EventStore, db: Database
) -> None:
    picky = Picky()
    runner, result = await skipping(store, db, picky)
    await runner.stop()
    first = result.last_position - len(MIXED) + 1
    error = "ValueError: cannot fold a bad event"
    expected = [(first + 1, "s", 2, "bad", error, 1), (first + 3, "s", 4, "bad", error, 1)]
    assert await failure_rows(db) == expected
    assert await totals(db) == {"s": 3}  # the good events, each once
    # a restarted runner neither applies nor records anything again
    later = await store.append("t", [NewEvent("good"), NewEvent("bad")])
    runner = ProjectionRunner(store, db, [picky.projection("skip")])
    await runner.start()
    await runner.wait_for(later.last_position)
    (status,) = await runner.status()
    await runner.stop()
    assert await totals(db) == {"s": 3, "t": 1}
    assert [r[0] for r in await failure_rows(db)] == [first + 1, first + 3, later.last_position]
    assert (status.failures, status.state, status.lag_positions) == (3, "following", 0)


async def test_retry_applies_recorded_failures_that_now_apply_and_keeps_the_rest(
    store: EventStore, db: Database
) -> None:
    picky = Picky()
    runner, _ = await skipping(store, db, picky)
    again = await runner.retry_failures("picky")  # still broken: kept, one more attempt
    assert (again.applied, again.failing) == (0, 2)
    assert [r[5] for r in await failure_rows(db)] == [2, 2]
    picky.broken = False
    fixed = await runner.retry_failures("picky")
    await runner.stop()
    assert (fixed.applied, fixed.failing) == (2, 0)
    assert await failure_rows(db) == []
    assert await totals(db) == {"s": 5}
