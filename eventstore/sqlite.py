"""The SQLite backend, the embedded default: one database file in WAL mode, one writer thread
that group-commits, and a reader thread; both keep the event loop free.

Positions are taken inside the writing transaction (BEGIN IMMEDIATE holds the file's write lock),
so they are gapless and in commit order even with writers in other processes."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from dbdrivers.sqlite import LoopFirstReader, SQLiteThread, connect, unavailable, write_turn
from eventstore.errors import (
    EventStoreError,
    InvalidEventError,
    StoreClosedError,
    StoreUnavailableError,
)
from eventstore.groupcommit import GroupCommitter, Pacing
from eventstore.limits import (
    Limits,
    check_position,
    check_snapshot,
    check_stream,
    check_version,
)
from eventstore.model import (
    ANY,
    AppendResult,
    NewEvent,
    RecordedEvent,
    Snapshot,
    records_from_rows,
)
from eventstore.planning import (
    Accepted,
    AppendRequest,
    BatchAnswer,
    BatchPlanner,
    PriorEvent,
    answer_for,
)
from eventstore.signal import CommitSignal
from eventstore.stats import StoreStats
from eventstore.subscription import SharedReads, Subscription

T = TypeVar("T")

REQUIRED_TABLES = ("es_events", "es_snapshots")
_COLUMNS = "position, stream, version, type, data, metadata, idempotency_key, recorded_at"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_ANY_VERSION = 1 << 62  # above every version: "no upper bound" in a query


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _latest_snapshot(conn: sqlite3.Connection, stream: str, max_version: int) -> Any:
    """The row of `stream`'s latest snapshot at or below `max_version`, or None."""
    return conn.execute(
        "SELECT stream, version, state, metadata, recorded_at FROM es_snapshots"
        " WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT 1",
        (stream, max_version),
    ).fetchone()


def _snapshot(row: tuple[Any, ...]) -> Snapshot:
    return Snapshot(row[0], row[1], row[2], json.loads(row[3]), _moment(row[4]))


def _records(rows: list[tuple[Any, ...]]) -> list[RecordedEvent]:
    return records_from_rows(rows, _moment)


class _Thread:
    """One connection of the store, used only from one dedicated thread; sqlite3's errors come
    out in the event store's tree."""

    def __init__(self, thread: SQLiteThread) -> None:
        self._thread = thread

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._thread.run(fn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        except RuntimeError as exc:  # executor shut down
            raise StoreClosedError("the event store is closed") from exc

    def interrupt(self) -> None:
        self._thread.interrupt()

    async def close(self) -> None:
        await self._thread.close()


def _translate(exc: sqlite3.Error) -> EventStoreError:
    message = str(exc)
    if "no such table" in message:
        return EventStoreError(f"the event store schema is missing ({message}): run migrations")
    if unavailable(exc):
        return StoreUnavailableError(f"sqlite: {message}")
    return EventStoreError(f"sqlite: {message}")


class SQLiteEventStore:
    """Event store in one SQLite file. Create the schema first (`jacameno migrate`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        limits: Limits | None = None,
        max_batch_events: int = 5000,
        pacing: Pacing | None = None,
        poll_interval: float = 1.0,
        synchronous: str = "FULL",
        loop_reads: float | None = None,
    ) -> None:
        self.path = str(path)
        self.limits = limits or Limits()
        opener = functools.partial(connect, self.path, synchronous=synchronous)
        self._writer = _Thread(SQLiteThread("es-sqlite-writer", opener))
        # Its reads are tried on the event loop first (`loop_reads`: their budget, seconds).
        self._reader = _Thread(LoopFirstReader("es-sqlite-reader", opener, loop_reads))
        self._committer = GroupCommitter(
            self._commit_batch, max_events=max_batch_events, pacing=pacing
        )
        self._signal = CommitSignal()
        self._poll_interval = poll_interval
        self._shared_reads = SharedReads(self)
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, **options: Any) -> SQLiteEventStore:
        """Open the store and check that its schema exists."""
        store = cls(path, **options)
        try:
            present = await store._reader.run(
                lambda c: {
                    r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
            )
            missing = [t for t in REQUIRED_TABLES if t not in present]
            if missing:
                raise EventStoreError(
                    f"{path}: tables {missing} are missing: run `jacameno migrate`"
                )
            store._signal.publish(await store.head_position())
        except BaseException:
            await store.close()
            raise
        return store

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the event store is closed")

    # -- writing ---------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
    ) -> AppendResult:
        self._check_open()
        request = AppendRequest.checked(stream, events, expected_version, self.limits)
        return await self._committer.submit(request)

    async def _commit_batch(self, requests: list[AppendRequest]) -> list[BatchAnswer]:
        async with write_turn(self.path).hold(urgent=True):
            answers, head = await self._writer.run(lambda c: _write_batch(c, requests))
        self._signal.publish(head)
        return answers

    async def save_snapshot(
        self,
        stream: str,
        version: int,
        state: bytes,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._check_open()
        check_stream(stream)
        check_version(version)
        meta = check_snapshot(state, metadata, self.limits)
        now = _micros(datetime.now(UTC))
        limits = self.limits

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = _stream_version(conn, stream)
                if 0 < version <= current:
                    conn.execute(
                        "INSERT OR REPLACE INTO es_snapshots (stream, version, state, metadata,"
                        " recorded_at) VALUES (?, ?, ?, ?, ?)",
                        (stream, version, state, meta, now),
                    )
                    found = conn.execute(
                        "SELECT version FROM es_snapshots WHERE stream = ?", (stream,)
                    ).fetchall()
                    kept = limits.snapshots_kept([row[0] for row in found], version, len(state))
                    conn.executemany(
                        "DELETE FROM es_snapshots WHERE stream = ? AND version = ?",
                        [(stream, row[0]) for row in found if row[0] not in kept],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return 0 < version <= current

        async with write_turn(self.path).hold(urgent=True):
            saved = await self._writer.run(write)
        if not saved:
            raise InvalidEventError(f"stream {stream!r} has no version {version}")

    # -- reading ---------------------------------------------------------------------------

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        check_stream(stream)
        low = check_version(from_version, "from_version")
        high = _ANY_VERSION if to_version is None else check_version(to_version, "to_version")
        count = -1 if limit is None else check_version(limit, "limit")
        rows = await self._reader.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM es_events WHERE stream = ? AND version BETWEEN ? AND ?"
                " ORDER BY version LIMIT ?",
                (stream, low, high, count),
            ).fetchall()
        )
        return _records(rows)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        self._check_open()
        after = check_position(after_position)
        count = check_version(limit, "limit")
        rows = await self._reader.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM es_events WHERE position > ? ORDER BY position LIMIT ?",
                (after, count),
            ).fetchall()
        )
        return _records(rows)

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        check_position(after_position)
        return Subscription(
            self._shared_reads,
            after_position,
            batch_size=batch_size,
            poll_interval=self._poll_interval,
        )

    async def head_position(self) -> int:
        self._check_open()
        head: int = await self._reader.run(
            lambda c: c.execute("SELECT coalesce(max(position), 0) FROM es_events").fetchone()[0]
        )
        return head

    async def stream_version(self, stream: str) -> int:
        self._check_open()
        check_stream(stream)
        return await self._reader.run(lambda c: _stream_version(c, stream))

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        self._check_open()
        check_stream(stream)
        high = _ANY_VERSION if max_version is None else check_version(max_version, "max_version")
        row = await self._reader.run(lambda c: _latest_snapshot(c, stream, high))
        return None if row is None else _snapshot(row)

    async def read_from_snapshot(
        self, stream: str, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        self._check_open()
        check_stream(stream)
        count = check_version(limit, "limit")

        def read(c: sqlite3.Connection) -> tuple[Any, list[Any]]:
            # One hop to the reader thread. The events are read after the snapshot, and the
            # log only grows: whatever commits between the two reads is read too.
            snap = _latest_snapshot(c, stream, _ANY_VERSION)
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM es_events WHERE stream = ? AND version > ?"
                " ORDER BY version LIMIT ?",
                (stream, 0 if snap is None else snap[1], count),
            ).fetchall()
            return snap, rows

        snap, rows = await self._reader.run(read)
        return None if snap is None else _snapshot(snap), _records(rows)

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        if self._closed:
            return False
        return await self._signal.wait(after_position, timeout)

    # -- lifecycle -------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        return self._committer.stats()

    def interrupt_writer(self) -> None:
        """Abort the statement the writer is running (its batch fails and rolls back). A test
        seam: fault-injection tests call it; the server never does."""
        self._writer.interrupt()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._committer.close()
        self._signal.poke()
        await self._writer.close()
        await self._reader.close()


def _stream_version(conn: sqlite3.Connection, stream: str) -> int:
    row = conn.execute(
        "SELECT coalesce(max(version), 0) FROM es_events WHERE stream = ?", (stream,)
    ).fetchone()
    return int(row[0])


def _heads(conn: sqlite3.Connection, streams: list[str]) -> tuple[int, dict[str, int]]:
    """The log's head position and the version of each of `streams` (at least one); the first
    stream's version comes in the same statement as the head (one statement less per batch,
    whose usual case is one stream)."""
    first, *rest = streams
    head, version = conn.execute(
        "SELECT (SELECT coalesce(max(position), 0) FROM es_events),"
        " (SELECT coalesce(max(version), 0) FROM es_events WHERE stream = ?)",
        (first,),
    ).fetchone()
    versions = {first: int(version)}
    versions.update((stream, _stream_version(conn, stream)) for stream in rest)
    return int(head), versions


def _find_keys(
    conn: sqlite3.Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], PriorEvent]:
    found: dict[tuple[str, str], PriorEvent] = {}
    for stream, key in pairs:
        row = conn.execute(
            "SELECT version, position, type, data FROM es_events"
            " WHERE stream = ? AND idempotency_key = ?",
            (stream, key),
        ).fetchone()
        if row is not None:
            found[(stream, key)] = PriorEvent(row[0], row[1], row[2], row[3])
    return found


# The columns an append writes, in the order _write_batch lays out their values: the row's place
# and time, then the fields of a CheckedEvent in its own order.
_INSERTED = "position, stream, version, recorded_at, type, data, metadata, idempotency_key"
_WIDTH = 8
_CHUNK = 128  # rows per INSERT statement at most (1,024 parameters)


@functools.cache
def _insert_statement(rows: int) -> str:
    row = "(" + ",".join("?" * _WIDTH) + ")"
    return f"INSERT INTO es_events ({_INSERTED}) VALUES " + ",".join([row] * rows)


def _insert_rows(conn: sqlite3.Connection, values: list[Any]) -> None:
    """Insert the rows laid out flat in `values`, many per statement: one multi-row INSERT costs
    about two thirds of the CPU of as many one-row executions (executemany), whose per-row
    reset, binding and step dominate for small events. Statements take power-of-two numbers of
    rows up to _CHUNK, so that a handful of SQL strings serve every batch size (each compiled
    once, then found in the connection's statement cache)."""
    rows = len(values) // _WIDTH
    done = 0
    while done < rows:
        count = min(_CHUNK, 1 << ((rows - done).bit_length() - 1))
        conn.execute(_insert_statement(count), values[done * _WIDTH : (done + count) * _WIDTH])
        done += count


def _write_batch(
    conn: sqlite3.Connection, requests: list[AppendRequest]
) -> tuple[list[BatchAnswer], int]:
    """Decide and write one batch in one transaction; return the answers and the new head."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        head, versions = _heads(conn, list(dict.fromkeys(r.stream for r in requests)))
        prior = _find_keys(conn, {(r.stream, k) for r in requests for k in r.keys})
        planner = BatchPlanner(versions, prior)
        now = _micros(datetime.now(UTC))
        values: list[Any] = []  # the rows' values one after another, in _INSERTED order
        add = values.extend
        answers: list[BatchAnswer] = []
        for request in requests:
            outcome = planner.plan(request)
            if isinstance(outcome, Accepted):
                position = head + outcome.row_offset + 1
                version = outcome.first_version
                stream = request.stream
                for event in request.events:
                    add((position, stream, version, now))
                    add(event)  # type, data, metadata_json, idempotency_key
                    position += 1
                    version += 1
            answers.append(answer_for(request, outcome, head))
        _insert_rows(conn, values)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return answers, head + planner.rows
