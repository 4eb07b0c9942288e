"""The peer of the event store benchmark: eventsourcing's lowest public layer (its application
recorder: `insert_events`, `select_notifications`), pinned in the `peer` extra, on the same
database file or server and the same events as our store.

Only the benchmark imports this module (an import-linter contract keeps eventsourcing in it).
The peer's API is synchronous, so each call runs in a worker thread, as our store's SQL does;
its events carry what its table has room for: the stream as a UUID, the version, the type as
its topic and the data as its state (no metadata, timestamp or idempotency key)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import psycopg
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from load.stats import Measurement
from load.workload import EVENT_TYPE, Workload

VERSION = "9.5.6"  # the pin of the `peer` extra in pyproject.toml


@dataclass(slots=True)
class Peer:
    """An open eventsourcing application recorder and the settings it runs under."""

    recorder: ApplicationRecorder
    settings: dict[str, Any]
    threads: ThreadPoolExecutor

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.threads, fn, *args)


def _events(workload: Workload, stream: uuid.UUID, first: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(stream, first + i, EVENT_TYPE, event.data)
        for i, event in enumerate(workload.events(count))
    ]


@contextlib.contextmanager
def _executor(threads: int) -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(threads, thread_name_prefix="bench-peer")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True)


@contextlib.asynccontextmanager
async def sqlite_peer(path: str, threads: int) -> AsyncIterator[Peer]:
    """The peer on its own table in the SQLite file at `path` (WAL, as it sets itself), with
    synchronous=FULL, the setting of our store, checked on its connection."""
    datastore = SQLiteDatastore(path, pool_size=threads + 1)
    try:
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            mode = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            sync = cursor.fetchone()[0]
        if mode != "wal" or sync != 2:  # 2: FULL, SQLite's default, which the peer keeps
            raise RuntimeError(f"peer runs with journal_mode={mode}, synchronous={sync}")
        with _executor(threads) as executor:
            settings = {"eventsourcing": VERSION, "journal_mode": mode, "synchronous": "FULL"}
            yield Peer(recorder, settings, executor)
    finally:
        datastore.close()


@contextlib.asynccontextmanager
async def postgres_peer(dsn: str, threads: int) -> AsyncIterator[Peer]:
    """The peer on its own table in the database at `dsn` (synchronous_commit as the server
    has it: on, like our store's writer)."""
    url = urlsplit(dsn)
    datastore = PostgresDatastore(
        dbname=url.path.lstrip("/"),
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        pool_size=threads + 1,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        with datastore.get_connection() as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
        commit = next(iter(row.values())) if row else None
        with _executor(threads) as executor:
            settings = {
                "eventsourcing": VERSION,
                "synchronous_commit": commit,
                "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
            }
            yield Peer(recorder, settings, executor)
    finally:
        datastore.close()


async def batched_appends(
    peer: Peer, workload: Workload, *, batch: int, events: int, max_seconds: float, warmup: int = 5
) -> Measurement:
    """As `scenarios.batched_appends`: one writer, one stream, `batch` events per call."""
    stream = uuid.uuid4()
    version = 1
    for _ in range(warmup):
        await peer.call(peer.recorder.insert_events, _events(workload, stream, version, batch))
        version += batch
    batches = []
    for _ in range(max(1, events // batch)):
        batches.append(_events(workload, stream, version, batch))
        version += batch
    latencies: list[float] = []
    start = perf_counter()
    deadline = start + max_seconds
    for stored in batches:
        t0 = perf_counter()
        await peer.call(peer.recorder.insert_events, stored)
        t1 = perf_counter()
        latencies.append(t1 - t0)
        if t1 > deadline:
            break
    return Measurement(len(latencies) * batch, perf_counter() - start, latencies)


async def concurrent_appenders(
    peer: Peer, workload: Workload, *, tasks: int, seconds: float, warmup: float
) -> Measurement:
    """As `scenarios.concurrent_appenders`: `tasks` writers (threads of the peer's executor),
    each appending one event at a time to a stream of its own."""
    measuring = False
    stop = False
    latencies: list[float] = []

    async def appender() -> None:
        stream = uuid.uuid4()
        version = 0
        while not stop:
            version += 1
            t0 = perf_counter()
            await peer.call(peer.recorder.insert_events, _events(workload, stream, version, 1))
            if measuring:
                latencies.append(perf_counter() - t0)

    running = [asyncio.create_task(appender()) for _ in range(tasks)]
    try:
        await asyncio.sleep(warmup)
        measuring = True
        start = perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = perf_counter() - start
    finally:
        stop = True
        await asyncio.gather(*running)
    return Measurement(len(latencies), elapsed, latencies)


async def catch_up(peer: Peer, *, batch_size: int) -> Measurement:
    """As `scenarios.catch_up`: read the peer's whole log from the start, `batch_size` a page."""
    head = await peer.call(peer.recorder.max_notification_id) or 0
    position = 0
    read = 0
    pages: list[float] = []
    start = perf_counter()
    while position < head:
        t0 = perf_counter()
        page = await peer.call(_page, peer.recorder, position, batch_size)
        pages.append(perf_counter() - t0)
        read += len(page)
        position = page[-1].id
    return Measurement(read, perf_counter() - start, pages)


def _page(recorder: ApplicationRecorder, after: int, limit: int) -> list[Any]:
    return list(recorder.select_notifications(after, limit, inclusive_of_start=False))
