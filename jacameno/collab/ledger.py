"""What a node sent to a room's sockets before it was durable, kept where it outlives the node: so
that an edit another client brings back after the node's death is logged under the user who made
it (docs/collaboration.md, "Broadcast modes").

In on-receipt mode (`JACAMENO_COLLAB_BROADCAST`) a writer's update reaches the room's other
sockets before its commit. If the node dies before the commit, the edit reaches the log only
through a client that holds it: its sender resends it, and so does every other client that saw
it. Whoever reconnects first brings it back. The server cannot tell from the update who made it:
a Yjs client id is chosen by the client, so taking the update's client id at its word would let
any editor log text under someone else's name. So the node writes down, as it broadcasts, which
clocks of which Yjs client it sent for which user (`Sent`), and a room reads what a dead node
wrote (`recall`) before a socket's first new structs: a client's new structs that lie within
clocks one other user was recorded sending are logged under that user
(jacameno.collab.recovered), with the user of the socket that brought it back in `brought_by`.
A client can then only have text logged under another user at
clocks that user's client really sent and the log lost: clocks no client can choose before the
server has broadcast them, and which the author's own client resends too.

Where the ledger lives: with Postgres, an UNLOGGED table of the same database (no WAL, no
fsync: it survives the node, and is emptied only by a crash of Postgres itself); with SQLite, a
file of its own beside the database, written without fsync (`synchronous=OFF`), so that its
writes never wait behind the log's write lock, which is held through the very commit that may
not finish. A record is one row per (project, Yjs client, user): the clocks sent so far, widened
as more are sent; rows untouched for `keep_seconds` are deleted. `record` never waits: in
Postgres a flusher task writes what was recorded in one statement per turn of the event loop; the
SQLite file is written in the event loop's own thread, what was recorded in one turn in one
transaction at the next: without fsync that is a write to the operating system's page cache
(its statement alone, about 14 us of CPU; through the event loop and a thread pool a record
cost about 190 us; `_FileLedger`). Best effort by design: a record the node had no time to
write leaves the edit to its default author, the socket that brings it back, as without a
ledger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbdrivers.sqlite import connect
from sqldb import Connection, Database
from sqldb.sqlite import sqlite_error

logger = logging.getLogger(__name__)

TABLE = "collab_early"
WARN_EVERY = 30.0  # seconds: at most one warning per this long while the ledger cannot be written
PRUNE_EVERY = 60.0  # seconds between deletions of rows older than `keep_seconds`
BUSY_MS = 5  # milliseconds an SQLite ledger's write waits for another process's lock
LINGER = 1.0  # seconds a table ledger holds its connection after its last record

_CREATE = (
    "CREATE {unlogged} TABLE IF NOT EXISTS {table} ("
    " project_id TEXT NOT NULL, client_id BIGINT NOT NULL, user_id TEXT NOT NULL,"
    " connection_id TEXT NOT NULL, clock_start BIGINT NOT NULL, clock_end BIGINT NOT NULL,"
    " at BIGINT NOT NULL, PRIMARY KEY (project_id, client_id, user_id))"
)
_UPSERT = (
    f"INSERT INTO {TABLE} AS t (project_id, client_id, user_id, connection_id, clock_start,"
    " clock_end, at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (project_id, client_id, user_id) DO UPDATE SET"
    " connection_id = excluded.connection_id, at = excluded.at,"
    " clock_start = {least}(t.clock_start, excluded.clock_start),"
    " clock_end = {greatest}(t.clock_end, excluded.clock_end)"
)
_RECALL = (
    f"SELECT client_id, user_id, connection_id, clock_start, clock_end FROM {TABLE}"
    " WHERE project_id = $1 AND at >= $2"
)
_PRUNE = f"DELETE FROM {TABLE} WHERE at < $1"


def _sqlite(sql: str) -> str:
    """A statement above in SQLite's placeholders (`?1`)."""
    return sql.replace("$", "?")


@dataclass(frozen=True, slots=True)
class Sent:
    """Clocks `start` to `end` (exclusive) of Yjs client `client`, sent to a room's sockets
    before they were durable, for `user_id` (by its socket `connection_id`)."""

    client: int
    start: int
    end: int
    user_id: str
    connection_id: str


_Key = tuple[str, int, str]  # project, client, user
_Row = tuple[str, int, str, str, int, int, int]


class _Records:
    """What was recorded and not yet written: one entry per row, widened."""

    def __init__(self) -> None:
        self.queued: dict[_Key, list[Any]] = {}  # connection, start, end

    def add(self, project_id: str, sent: Sent) -> None:
        key = (project_id, sent.client, sent.user_id)
        queued = self.queued.get(key)
        if queued is None:
            self.queued[key] = [sent.connection_id, sent.start, sent.end]
        else:
            queued[0] = sent.connection_id
            queued[1] = min(queued[1], sent.start)
            queued[2] = max(queued[2], sent.end)

    def rows(self, now_ms: int) -> list[_Row]:
        """The rows to upsert, written at `now_ms`; emptied."""
        queued, self.queued = self.queued, {}
        return [
            (project, client, user, connection, start, end, now_ms)
            for (project, client, user), (connection, start, end) in queued.items()
        ]


class EarlyLedger:
    """The records of one node, written behind its broadcasts; and those of every node, read
    when a socket brings edits back (`recall`). `open` (a table of the database) or `open_file`
    (an SQLite file of its own) make one."""

    def __init__(self, *, keep_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._keep_ms = int(keep_seconds * 1000)
        self._clock = clock
        self._warned_at = -WARN_EVERY
        self._pruned_at = 0.0
        self.dropped = 0  # records not written (the database refused or was unavailable)

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
        writer: Database | None = None,
    ) -> EarlyLedger:
        """The ledger in `db` (a Postgres database: an UNLOGGED table in it), its table created
        if missing; read through `db`, and written through `writer` if given (a database of the
        ledger's own, closed with it, whose connection it holds while records keep coming:
        `LINGER`), else through `db`, a connection taken for each write. DatabaseError if it
        cannot be."""
        if db.kind == "postgres":
            async with db.transaction() as conn:
                # Nodes starting together would race to create the table's type otherwise.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", TABLE)
                await conn.execute(_CREATE.format(unlogged="UNLOGGED", table=TABLE))
        else:
            await db.execute(_CREATE.format(unlogged="", table=TABLE))
        return _TableLedger(db, keep_seconds=keep_seconds, clock=clock, writer=writer)

    @classmethod
    async def open_file(
        cls,
        path: Path,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> EarlyLedger:
        """The ledger in an SQLite file of its own at `path`, written without fsync.
        DatabaseError if it cannot be opened."""
        path.parent.mkdir(parents=True, exist_ok=True)

        def opener() -> sqlite3.Connection:
            conn = connect(path, synchronous="OFF")
            conn.execute(_CREATE.format(unlogged="", table=TABLE))  # here, it may wait
            # Written in the event loop's thread: another process writing the file (a second
            # node on it) holds up the loop at most this long, then the batch is dropped.
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            return conn

        return await _FileLedger.started(opener, keep_seconds=keep_seconds, clock=clock)

    def record(self, project_id: str, sent: Sent) -> None:
        """Write `sent` down (soon, in the background: never waits)."""
        raise NotImplementedError

    async def recall(self, project_id: str) -> list[Sent]:
        """What was recorded for `project_id` in the last `keep_seconds`, by any node;
        DatabaseError if it cannot be read."""
        raise NotImplementedError

    async def flushed(self) -> None:
        """Wait until what was recorded so far is written (or dropped)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Write what is queued, then stop."""
        raise NotImplementedError

    def _since_ms(self) -> int:
        return int(self._clock() * 1000) - self._keep_ms

    def _prune_due(self, now_ms: int) -> bool:
        if now_ms - self._pruned_at * 1000 < PRUNE_EVERY * 1000:
            return False
        self._pruned_at = now_ms / 1000
        return True

    def _dropped(self, count: int, exc: Exception) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "early broadcasts not recorded: an edit brought back after this node's death"
                " would be logged under the user who brings it back",
                extra={"action": "collab.ledger_failed", "error": repr(exc)},
            )


def _recalled(rows: list[Any]) -> list[Sent]:
    return [Sent(int(r[0]), int(r[3]), int(r[4]), str(r[1]), str(r[2])) for r in rows]


class _TableLedger(EarlyLedger):
    """A table of a database, written by a flusher task: one statement per turn of the event
    loop for what was recorded meanwhile. With a `writer` of its own, on a connection it holds
    while records keep coming (`LINGER`: one taken from a pool for each record, in the rhythm of
    a room's edits, cost about a quarter more CPU per record); reads go through `db` all the same,
    never waiting for that connection."""

    def __init__(
        self,
        db: Database,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
        writer: Database | None = None,
    ) -> None:
        super().__init__(keep_seconds=keep_seconds, clock=clock)
        self._db = db
        self._writer = writer or db
        self._owns_writer = writer is not None
        self._linger = LINGER if writer is not None else 0.0  # never holds a shared pool's
        postgres = db.kind == "postgres"
        self._upsert = _UPSERT.format(
            least="LEAST" if postgres else "min", greatest="GREATEST" if postgres else "max"
        )
        self._records = _Records()
        self._flusher: asyncio.Task[None] | None = None
        self._more: asyncio.Future[None] | None = None  # the lingering flusher waits on it
        self._drained = asyncio.Event()  # nothing is recorded and not yet written (or dropped)
        self._drained.set()

    def record(self, project_id: str, sent: Sent) -> None:
        self._records.add(project_id, sent)
        self._drained.clear()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="early-ledger")
        elif self._more is not None and not self._more.done():
            self._more.set_result(None)

    async def recall(self, project_id: str) -> list[Sent]:
        return _recalled(await self._db.fetch(_RECALL, project_id, self._since_ms()))

    async def flushed(self) -> None:
        await self._drained.wait()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flushed()
        flusher = self._flusher
        if flusher is not None:  # lingering: let its connection go
            flusher.cancel()
            with contextlib.suppress(BaseException):
                await flusher
        if self._owns_writer:
            await self._writer.close()

    async def _flush(self) -> None:
        try:
            while self._records.queued:
                try:
                    async with self._writer.connection() as conn:
                        while await self._waited():
                            await self._write(conn)
                except Exception as exc:  # no connection, or it broke: given back, and again
                    if rows := self._records.rows(0):
                        self._dropped(len(rows), exc)
        finally:
            self._flusher = self._more = None
            if not self._records.queued:
                self._drained.set()

    async def _waited(self) -> bool:
        """Whether records are queued, waiting up to `linger` for one (False: none came)."""
        if self._records.queued:
            return True
        self._drained.set()
        if self._linger <= 0:
            return False
        self._more = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._linger):
                await self._more
        except TimeoutError:
            return False
        return True

    async def _write(self, conn: Connection) -> None:
        """Write what is queued; what cannot be is dropped, and the error raised (the
        connection may be broken: given back)."""
        now = int(self._clock() * 1000)
        rows = self._records.rows(now)
        try:
            if len(rows) == 1:  # a statement of its own costs less than a batch of one
                await conn.execute(self._upsert, *rows[0])
            else:
                await conn.executemany(self._upsert, rows)
            if self._prune_due(now):
                await conn.execute(_PRUNE, now - self._keep_ms)
        except Exception as exc:
            self._dropped(len(rows), exc)
            raise


_Opener = Callable[[], sqlite3.Connection]


class _FileLedger(EarlyLedger):
    """An SQLite file of its own, written without fsync in the event loop's own thread: what
    was recorded in one turn of the loop, in one transaction at the next (a write to the
    operating system's page cache, not a wait for the disk). It was written by a thread of its
    own, fed through a queue, which cost less CPU per record on an idle loop but took the GIL
    from the busy event loop at each record: near capacity that thread made acknowledgements
    about 40 % slower than no ledger, where this way is level with none (docs/benchmarks.md,
    2026-12-07)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(keep_seconds=keep_seconds, clock=clock)
        self._conn = conn
        self._upsert = _sqlite(_UPSERT.format(least="min", greatest="max"))
        self._records = _Records()
        self._due: asyncio.Handle | None = None  # the write at the next turn
        self._closed = False

    @classmethod
    async def started(
        cls, opener: _Opener, *, keep_seconds: float, clock: Callable[[], float] = time.time
    ) -> _FileLedger:
        """The ledger on the file `opener` opens (in a worker thread: the one wait for the
        disk); DatabaseError if it cannot be."""
        try:
            conn = await asyncio.to_thread(opener)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc
        return cls(conn, keep_seconds=keep_seconds, clock=clock)

    def record(self, project_id: str, sent: Sent) -> None:
        if self._closed:
            return
        self._records.add(project_id, sent)
        if self._due is None:
            self._due = asyncio.get_running_loop().call_soon(self._write)

    async def recall(self, project_id: str) -> list[Sent]:
        self._write()  # what this node recorded too
        try:
            rows = self._conn.execute(_sqlite(_RECALL), (project_id, self._since_ms())).fetchall()
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc
        return _recalled(rows)

    async def flushed(self) -> None:
        self._write()

    async def close(self) -> None:
        if self._closed:
            return
        self._write()
        self._closed = True
        self._conn.close()

    def _write(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if not self._records.queued:
            return
        now = int(self._clock() * 1000)
        rows = self._records.rows(now)
        conn = self._conn
        try:
            if len(rows) == 1:  # a statement is its own transaction (autocommit)
                conn.execute(self._upsert, rows[0])
            else:
                with conn:  # one transaction
                    conn.execute("BEGIN")
                    conn.executemany(self._upsert, rows)
            if self._prune_due(now):
                conn.execute(_sqlite(_PRUNE), (now - self._keep_ms,))
        except sqlite3.Error as exc:  # a file that can no longer be written: the edit stays
            self._dropped(len(rows), exc)
