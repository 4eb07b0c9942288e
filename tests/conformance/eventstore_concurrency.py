"""Many concurrent writers, conflicts and injected faults while subscribers read live: afterwards
every committed event was seen exactly once, in position order, and nothing else was."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from eventstore import (
    ANY,
    AppendResult,
    ConcurrencyError,
    EventStore,
    NewEvent,
    RecordedEvent,
    StoreClosedError,
    StoreUnavailableError,
)
from tests.conformance.eventstore_support import Backend, Collector, retrying, summary

STREAMS = ("project-1", "project-2", "project-3", "project-4", "user-5")


@dataclass
class Attempt:
    """One append as its writer saw it: the result, or None when a conflict refused it."""

    stream: str
    events: list[NewEvent]
    result: AppendResult | None
    retries: int


async def _append_until_decided(
    store: EventStore, stream: str, batch: list[NewEvent], expected: int
) -> Attempt:
    """The standard client: retry an append whose outcome is unknown with the same keys until
    it is decided; a conflict drops it."""
    for retries in range(500):
        try:
            result = await store.append(stream, batch, expected)
        except ConcurrencyError:
            return Attempt(stream, batch, None, retries)
        except StoreClosedError:
            raise
        except StoreUnavailableError:
            await asyncio.sleep(0.002 * min(retries, 10))
            continue
        return Attempt(stream, batch, result, retries)
    raise AssertionError(f"an append to {stream} never got through")


async def _writer(store: EventStore, writer: int, appends: int, attempts: list[Attempt]) -> None:
    rng = random.Random(writer)
    last_seen: dict[str, int] = {}
    for number in range(appends):
        stream = rng.choice(STREAMS)
        batch = [
            NewEvent(
                "thing.happened",
                f"w{writer}-a{number}-e{i}".encode(),
                {"writer": writer, "append": number},
                f"w{writer}-a{number}-e{i}",
            )
            for i in range(rng.randint(1, 5))
        ]
        # A third append anything, a third expect the version just read, a third the version
        # this writer last saw (often stale): conflicts happen on every backend.
        choice = rng.randrange(3)
        expected = ANY
        if choice == 1:
            expected = await retrying(functools.partial(store.stream_version, stream))
        elif choice == 2:
            expected = last_seen.get(stream, 0)
        attempt = await _append_until_decided(store, stream, batch, expected)
        if attempt.result is not None:
            last_seen[stream] = attempt.result.last_version
        attempts.append(attempt)


async def _inject_faults(
    backend: Backend, stores: Sequence[EventStore], stop: asyncio.Event
) -> int:
    faults = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backend.fault_interval)
        if not stop.is_set():
            await backend.inject_fault(stores)
            faults += 1
    return faults


async def _read_everything(store: EventStore) -> list[RecordedEvent]:
    log: list[RecordedEvent] = []
    while page := await retrying(lambda: store.read_all(len(log), 5000)):
        log.extend(page)
    return log


def _check_log(log: list[RecordedEvent], attempts: list[Attempt]) -> None:
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    written = [a for a in attempts if a.result is not None]
    assert sum(len(a.events) for a in written) == len(log)
    for attempt in written:
        result = attempt.result
        assert result is not None
        held = log[result.first_position - 1 : result.last_position]
        versions = range(result.first_version, result.last_version + 1)
        assert [(e.stream, e.version, e.data, e.idempotency_key) for e in held] == [
            (attempt.stream, version, new.data, new.idempotency_key)
            for version, new in zip(versions, attempt.events, strict=True)
        ]
    refused = {e.idempotency_key for a in attempts if a.result is None for e in a.events}
    assert refused.isdisjoint(e.idempotency_key for e in log)
    by_stream: dict[str, list[int]] = defaultdict(list)
    for recorded in log:
        by_stream[recorded.stream].append(recorded.version)
    for versions_seen in by_stream.values():
        assert versions_seen == list(range(1, len(versions_seen) + 1))


async def exercise_concurrent_writers(
    backend: Backend, stores: Sequence[EventStore], *, writers: int, appends: int
) -> list[Attempt]:
    """Run `writers` tasks of `appends` appends each, spread over `stores`, with a live subscriber
    and a restarting one on every store and faults injected all along; check what they saw."""
    collectors = [
        collector
        for store in stores
        for collector in (Collector(store), Collector(store, batch_size=7, restart_every=97))
    ]
    attempts: list[Attempt] = []
    stop = asyncio.Event()
    faults = asyncio.create_task(_inject_faults(backend, stores, stop))
    try:
        async with asyncio.timeout(120):
            await asyncio.gather(
                *(_writer(stores[w % len(stores)], w, appends, attempts) for w in range(writers))
            )
        stop.set()
        await faults
        log = await _read_everything(stores[0])
        _check_log(log, attempts)
        for collector in collectors:
            await collector.wait_until(len(log), timeout=30)
            assert [summary(e) for e in collector.events] == [summary(e) for e in log]
        assert all(c.restarts > 0 for c in collectors if c.restart_every) or len(log) < 97
    finally:
        stop.set()
        await asyncio.gather(faults, return_exceptions=True)
        for collector in collectors:
            await collector.stop()
    return attempts


class ConcurrencyTests:
    """Needs `backend` (every backend) and `sql_backend` (backends whose stores share a log)."""

    async def test_concurrent_writers_under_faults_lose_and_repeat_nothing(
        self, backend: Backend
    ) -> None:
        store = await backend.open(poll_interval=0.1)
        try:
            attempts = await exercise_concurrent_writers(backend, [store], writers=16, appends=50)
        finally:
            await store.close()
        assert any(a.result is None for a in attempts), "no append ever conflicted"
        assert any(a.result is not None for a in attempts)

    async def test_two_stores_on_one_database_append_concurrently_without_gaps(
        self, sql_backend: Backend
    ) -> None:
        stores = [await sql_backend.open(poll_interval=0.05) for _ in range(2)]
        try:
            attempts = await exercise_concurrent_writers(
                sql_backend, stores, writers=12, appends=30
            )
        finally:
            for store in stores:
                await store.close()
        assert any(a.result is None for a in attempts), "no append ever conflicted"
