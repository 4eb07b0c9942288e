"""What every SQLite connection of ours shares: the pragmas it opens with, the one thread it is
used from (statements run there, off the event loop), and which sqlite3 errors mean the database
failed (busy, locked, I/O, a file that is not a database) rather than a wrong statement."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


# Opening connections to a new file at once: the switch to WAL takes the file's exclusive lock,
# and SQLite answers busy at once, not after its busy timeout, to a connection that would
# otherwise deadlock on it. Tried again this often, this long apart.
WAL_TRIES = 200
WAL_PAUSE = 0.01  # seconds


def use_wal(conn: sqlite3.Connection) -> None:
    """Put the connection's file in WAL mode (a no-op once it is), trying again while SQLite
    answers busy at once."""
    for tried in range(1, WAL_TRIES + 1):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or tried == WAL_TRIES:
                raise
            time.sleep(WAL_PAUSE)


def connect(path: str | Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open a connection with the settings every JACAMENO SQLite connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        use_wal(conn)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()  # a file that is not a database, say: no connection left open behind
        raise
    return conn


# SQLite's primary result codes that mean the database failed (busy or locked past the busy
# timeout, I/O, a full disk, a file that cannot be opened, is corrupt or is not a database, an
# interrupted statement), as opposed to SQLITE_ERROR and the constraint codes: the statement.
_FAILED = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)


def unavailable(exc: sqlite3.Error) -> bool:
    """Whether `exc` means the database failed rather than a statement being wrong (a syntax
    error, a constraint, a misuse of the module)."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)  # None: raised by the module
    return code is not None and code & 0xFF in _FAILED


class WriteTurn:
    """Whose turn it is to write to one SQLite file, among the writers of this process and
    event loop: the event store's commits and snapshots (`urgent`: collaborators wait for their
    acknowledgement) go before the read models' transactions that wait, and each writer goes in
    as soon as the last one is done. Without it they met only at SQLite's lock, whose busy
    handler sleeps 1, 2, 5, 10, 15, 20 ms... between tries: a commit of the log behind a
    projection's transaction lost tens of milliseconds. Nothing depends on it for correctness
    (other processes still meet at SQLite's own lock)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held or any(self._waiting):
            turn = asyncio.get_running_loop().create_future()
            self._waiting[0 if urgent else 1].append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._pass()  # handed the turn as it was cancelled: to the next one
                else:
                    turn.cancel()  # skipped when its turn comes
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._pass()

    def _pass(self) -> None:
        for waiting in self._waiting:
            while waiting:
                turn = waiting.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


_WRITE_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteTurn]] = (
    weakref.WeakKeyDictionary()
)


# The real path of each path a turn was asked for: realpath makes a system call per component,
# and a write turn is taken for every transaction, on the event loop.
_REAL_PATHS: dict[str, str] = {}


def write_turn(path: str | Path) -> WriteTurn:
    """The `WriteTurn` of the SQLite file at `path` in the running event loop."""
    turns = _WRITE_TURNS.setdefault(asyncio.get_running_loop(), {})
    named = str(path)
    key = _REAL_PATHS.get(named)
    if key is None:
        key = _REAL_PATHS[named] = os.path.realpath(named)
    turn = turns.get(key)
    if turn is None:
        turn = turns[key] = WriteTurn()
    return turn


class SQLiteThread:
    """One connection, opened by `opener` on first use and used only from one dedicated thread.
    `run` raises sqlite3's own errors (each caller translates them into its tree) and
    RuntimeError once closed."""

    def __init__(self, name: str, opener: Callable[[], sqlite3.Connection]) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._opener = opener
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._opener()
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))

    async def call(self, fn: Callable[[], T]) -> T:
        """`fn()` in the thread (opening another connection, say), without its connection."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def open_another(self) -> sqlite3.Connection:
        """A new connection as this thread's opener makes them (call it in a thread)."""
        return self._opener()

    def interrupt(self) -> None:
        """Abort the statement running now (a test seam for fault injection)."""
        if self._conn is not None:
            self._conn.interrupt()

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)


# How long a read may run on the event loop before it is stopped and made again in its thread,
# and how many of SQLite's virtual machine instructions run between two looks at the clock.
LOOP_READ_BUDGET = 0.001  # seconds
_CHECK_EVERY = 1000


# What stops a read on the loop, besides its budget: a lock (which the thread waits for, where
# the loop may not) and a write (which the loop's connection refuses: it would wait for the disk).
_MADE_IN_THE_THREAD = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY}
)


@dataclass(slots=True)
class ReadTally:
    """Where this process's `LoopFirstReader`s made their reads (for /metrics): on the loop; in
    the thread after running past the budget; in the thread after meeting a lock or writing;
    in the thread with no budget."""

    loop: int = 0
    overran: int = 0
    refused: int = 0
    thread: int = 0


READS = ReadTally()


class LoopFirstReader(SQLiteThread):
    """A reading connection whose reads are tried first on the event loop, on a connection of
    its own, and made in the thread only when they run past `budget` seconds (SQLite's progress
    handler stops them), meet a lock, or write (the loop's connection is query-only: a statement
    that writes would wait for the disk's flush; it is refused and made in the thread, as it was
    before). A statement stopped so is undone whole, so making it again in the thread changes
    nothing but where it ran.

    Why: a read handed to a thread waits for the thread (and for the GIL, which a busy event
    loop holds) and then for the loop's turns to bring its answer back. Timed in a server
    taking a burst of 50 joiners on SQLite, reads that ran for 0.03 ms waited 2-4 ms to start;
    on the loop they take their 0.03 ms. A large read (a catch-up page, a big document's load,
    an analyst's query) overruns its budget once and goes to the thread, having held the loop
    for at most the budget. What the loop cannot bound is the disk: a page of the file that the
    operating system does not hold in memory is read while the loop waits. `budget`: seconds
    (None: LOOP_READ_BUDGET; 0: every read in the thread)."""

    def __init__(
        self,
        name: str,
        opener: Callable[[], sqlite3.Connection],
        budget: float | None = None,
    ) -> None:
        super().__init__(name, opener)
        self._budget = LOOP_READ_BUDGET if budget is None else budget
        self._loop_conn: sqlite3.Connection | None = None
        self._opening: asyncio.Future[sqlite3.Connection] | None = None
        self._closed = False
        self._deadline = 0.0
        self._overran = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("closed")
        if self._budget > 0:
            conn = self._loop_conn or await self._open_loop_connection()
            self._overran = False
            self._deadline = time.perf_counter() + self._budget
            try:
                result = fn(conn)
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if not self._overran and code not in _MADE_IN_THE_THREAD:
                    raise
                if conn.in_transaction:
                    self._deadline = math.inf
                    conn.rollback()
                if self._overran:
                    READS.overran += 1
                else:
                    READS.refused += 1
            else:
                READS.loop += 1
                return result
        else:
            READS.thread += 1
        return await super().run(fn)

    async def _open_loop_connection(self) -> sqlite3.Connection:
        # Opened in the thread: opening may wait for the file's lock (use_wal's tries).
        if self._opening is None:
            self._opening = asyncio.ensure_future(self.call(self._opened))
        opening = self._opening
        try:
            conn = await asyncio.shield(opening)  # once: a cancelled caller leaves it to others
        except BaseException:
            if opening.done():
                self._opening = None  # failed: the next read tries again
            raise
        if self._closed:
            raise RuntimeError("closed")  # `close` closes it
        self._loop_conn = conn
        return conn

    def _opened(self) -> sqlite3.Connection:
        conn = self.open_another()
        conn.execute("PRAGMA busy_timeout=0")  # a lock is met at once, and the thread waits
        conn.execute("PRAGMA query_only=1")  # a write is refused, and made in the thread
        conn.set_progress_handler(self._over_budget, _CHECK_EVERY)
        return conn

    def _over_budget(self) -> bool:
        if time.perf_counter() > self._deadline:
            self._overran = True
        return self._overran

    async def close(self) -> None:
        self._closed = True
        opening, self._opening = self._opening, None
        if opening is not None:
            await asyncio.wait({opening})
            if not opening.cancelled() and opening.exception() is None:
                # The loop's connection (or one nobody took), closed in the thread: the last
                # connection to a file checkpoints its WAL as it closes.
                await self.call(opening.result().close)
        self._loop_conn = None
        await super().close()
