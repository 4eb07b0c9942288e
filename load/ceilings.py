"""The raw ceilings of each database on this machine, with the rows the store writes: batched
multi-row inserts in transactions (rows/s) and sequential single-row durable commits (commits/s).
They run against scratch tables of the same shape as `es_events` (same columns and indexes)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import TypeVar

import asyncpg

from dbdrivers.sqlite import connect
from load.stats import Measurement
from load.workload import Row, Workload, new_stream

T = TypeVar("T")

_PG_COLUMNS = ["position", "stream", "version", "type", "data", "metadata", "idempotency_key"]
_PG_UNNEST = """
INSERT INTO {table} (position, stream, version, type, data, metadata, idempotency_key)
SELECT p, s, v, t, d, m::jsonb, k
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[],
            $7::text[]) AS r(p, s, v, t, d, m, k)
"""
_PG_SINGLE = """
INSERT INTO {table} (position, stream, version, type, data, metadata, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
"""
_SQLITE_INSERT = (
    "INSERT INTO {table} (position, stream, version, type, data, metadata, idempotency_key,"
    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
)


def _chunks(rows: list[Row], size: int) -> list[list[Row]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _columns(rows: list[Row]) -> list[list[object]]:
    return [
        [r.position for r in rows],
        [r.stream for r in rows],
        [r.version for r in rows],
        [r.type for r in rows],
        [r.data for r in rows],
        [r.metadata for r in rows],
        [r.idempotency_key for r in rows],
    ]


class _Laps:
    """The latencies of steps timed one after another, until `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.latencies: list[float] = []
        self.start = self._begun = perf_counter()
        self.deadline = self.start + seconds

    def begin(self) -> None:
        self._begun = perf_counter()

    def end(self) -> bool:
        """Record the step begun last; whether the time is up."""
        now = perf_counter()
        self.latencies.append(now - self._begun)
        return now > self.deadline

    def measurement(self) -> Measurement:
        return Measurement(len(self.latencies), perf_counter() - self.start, self.latencies)


async def _transactions(
    conn: asyncpg.Connection,
    batches: list[tuple[int, T]],
    write: Callable[[T], Awaitable[object]],
    max_seconds: float,
) -> Measurement:
    """`write` each batch (rows, payload) in a transaction of its own, until all are written or
    `max_seconds` have passed: rows written over the time taken."""
    done = 0
    start = perf_counter()
    for rows, batch in batches:
        async with conn.transaction():
            await write(batch)
        done += rows
        if perf_counter() - start > max_seconds:
            break
    return Measurement(done, perf_counter() - start)


class PostgresCeiling:
    """Raw ceilings of the Postgres database at `dsn`, on a connection with synchronous_commit=on
    (the setting of the store's writer)."""

    def __init__(self, dsn: str, workload: Workload) -> None:
        self._dsn = dsn
        self._workload = workload

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._dsn, server_settings={"synchronous_commit": "on"})

    async def _scratch(self, conn: asyncpg.Connection, table: str) -> None:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} (LIKE es_events INCLUDING ALL)")

    async def batched_inserts(self, rows: int, batch: int, max_seconds: float) -> Measurement:
        """`INSERT ... SELECT unnest(...)` of `batch` rows per transaction."""
        conn = await self._connect()
        try:
            await self._scratch(conn, "bench_raw_batched")
            statement = await conn.prepare(_PG_UNNEST.format(table="bench_raw_batched"))
            stream = new_stream()
            warm = _chunks(self._workload.rows(stream, 1, 5 * batch), batch)
            chunks = _chunks(self._workload.rows(stream, 5 * batch + 1, rows), batch)
            for chunk in warm:
                async with conn.transaction():
                    await statement.fetch(*_columns(chunk))
            arrays = [(len(chunk), _columns(chunk)) for chunk in chunks]
            return await _transactions(
                conn, arrays, lambda columns: statement.fetch(*columns), max_seconds
            )
        finally:
            await conn.close()

    async def copy_inserts(self, rows: int, batch: int, max_seconds: float) -> Measurement:
        """`COPY` (asyncpg copy_records_to_table) of `batch` rows per transaction."""
        conn = await self._connect()
        try:
            await self._scratch(conn, "bench_raw_copy")
            chunks = _chunks(self._workload.rows(new_stream(), 1, rows), batch)
            records = [(len(chunk), [tuple(_row(r)) for r in chunk]) for chunk in chunks]

            def copy(chunk: list[tuple[object, ...]]) -> Awaitable[str]:
                return conn.copy_records_to_table(
                    "bench_raw_copy", records=chunk, columns=_PG_COLUMNS
                )

            return await _transactions(conn, records, copy, max_seconds)
        finally:
            await conn.close()

    async def single_commits(self, seconds: float) -> Measurement:
        """One single-row INSERT per transaction (autocommit), sequential, for `seconds`."""
        conn = await self._connect()
        try:
            await self._scratch(conn, "bench_raw_single")
            statement = await conn.prepare(_PG_SINGLE.format(table="bench_raw_single"))
            rows = self._workload.rows(new_stream(), 1, 200)
            position = 0

            async def commit_one() -> None:
                nonlocal position
                row = rows[position % len(rows)]
                position += 1
                await statement.fetch(
                    position, row.stream, position, row.type, row.data, row.metadata, None
                )

            for _ in range(50):
                await commit_one()
            laps = _Laps(seconds)
            while True:
                laps.begin()
                await commit_one()
                if laps.end():
                    return laps.measurement()
        finally:
            await conn.close()


def _row(row: Row) -> tuple[object, ...]:
    return (
        row.position,
        row.stream,
        row.version,
        row.type,
        row.data,
        row.metadata,
        row.idempotency_key,
    )


def _settle(conn: sqlite3.Connection) -> None:
    """Copy what the ceiling wrote out of its WAL and close: the disk work its rows would still
    cost must not land in the middle of the store's figures."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


class SQLiteCeiling:
    """Raw ceilings of SQLite beside the store's file at `path`: in a file of their own in the
    same folder (the same disk), with the store's connection settings (WAL, synchronous=FULL)
    and the DDL of its `es_events`, run in a worker thread.

    Not in the store's file: the scratch tables dropped each round would leave a free list there
    that the store's appends then allocate from, each commit rewriting free-list pages too."""

    def __init__(self, path: str, workload: Workload) -> None:
        self._schema = path
        self._path = str(Path(path).with_name("ceiling.db"))
        self._workload = workload

    def _scratch(self, table: str) -> sqlite3.Connection:
        source = connect(self._schema)
        try:
            ddl = source.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'es_events' AND sql IS NOT NULL"
                " ORDER BY type DESC"  # the table before its indexes
            ).fetchall()
        finally:
            source.close()
        conn = connect(self._path)
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        for (sql,) in ddl:
            conn.execute(sql.replace("es_events", table))
        return conn

    async def batched_inserts(self, rows: int, batch: int, max_seconds: float) -> Measurement:
        """`executemany` of `batch` rows per transaction."""
        return await asyncio.to_thread(self._batched, rows, batch, max_seconds)

    def _batched(self, rows: int, batch: int, max_seconds: float) -> Measurement:
        conn = self._scratch("bench_raw_batched")
        insert = _SQLITE_INSERT.format(table="bench_raw_batched")
        try:
            stream = new_stream()
            warm = _chunks(self._workload.rows(stream, 1, 5 * batch), batch)
            chunks = _chunks(self._workload.rows(stream, 5 * batch + 1, rows), batch)
            tuples = [[_row(r) for r in chunk] for chunk in warm + chunks]

            def write(chunk: list[tuple[object, ...]]) -> None:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert, chunk)
                conn.execute("COMMIT")

            for chunk in tuples[: len(warm)]:
                write(chunk)
            done = 0
            start = perf_counter()
            for chunk in tuples[len(warm) :]:
                write(chunk)
                done += len(chunk)
                if perf_counter() - start > max_seconds:
                    break
            return Measurement(done, perf_counter() - start)
        finally:
            _settle(conn)

    async def single_commits(self, seconds: float) -> Measurement:
        """BEGIN IMMEDIATE; one INSERT; COMMIT, sequential, for `seconds`."""
        return await asyncio.to_thread(self._single, seconds)

    def _single(self, seconds: float) -> Measurement:
        conn = self._scratch("bench_raw_single")
        insert = _SQLITE_INSERT.format(table="bench_raw_single")
        try:
            rows = self._workload.rows(new_stream(), 1, 200)
            position = 0

            def commit_one() -> None:
                nonlocal position
                row = rows[position % len(rows)]
                position += 1
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    insert, (position, row.stream, position, row.type, row.data, row.metadata, None)
                )
                conn.execute("COMMIT")

            for _ in range(50):
                commit_one()
            laps = _Laps(seconds)
            while True:
                laps.begin()
                commit_one()
                if laps.end():
                    return laps.measurement()
        finally:
            _settle(conn)
