"""What every SQLite connection of ours shares: the pragmas it opens with, the one thread it is
used from (statements run there, off the event loop), and which sqlite3 errors mean the database
failed (busy, locked, I/O, a file that is not a database) rather than a wrong statement."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
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
