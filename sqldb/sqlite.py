"""The SQL layer on SQLite: writes (autocommit statements and transactions) go one at a time
through a writer thread; reads outside transactions see the last commit (WAL) and are tried on
the event loop first, then made in a reader thread if they run long, meet a lock or write
(`dbdrivers.sqlite.LoopFirstReader`). Every connection has the pragmas every SQLite connection
of ours has (`dbdrivers.sqlite`)."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dbdrivers.sqlite import LoopFirstReader, SQLiteThread, connect, unavailable, write_turn
from sqldb.errors import DatabaseError, DatabaseUnavailable, IntegrityError

if TYPE_CHECKING:
    from sqldb import Connection, Kind, Row

T = TypeVar("T")
logger = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"\$(\d+)")


def sqlite_error(exc: sqlite3.Error) -> DatabaseError:
    """sqlite3's error as this package's: IntegrityError, DatabaseUnavailable (the file failed)
    or DatabaseError (the statement)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if unavailable(exc):
        return DatabaseUnavailable(f"sqlite: {exc}")
    return DatabaseError(f"sqlite: {exc}")


def _opener(path: str) -> Callable[[], sqlite3.Connection]:
    def opener() -> sqlite3.Connection:
        conn = connect(path)
        conn.row_factory = sqlite3.Row
        return conn

    return opener


async def _run(thread: SQLiteThread, fn: Callable[[sqlite3.Connection], T]) -> T:
    try:
        return await thread.run(fn)
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from exc


@functools.lru_cache(maxsize=1024)
def _sqlite_sql(sql: str) -> str:
    """`$1` placeholders as SQLite's `?1`: made once per statement text (a statement of
    thousands of parameters, a set-based write, costs far more to rewrite than to run again)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


class _SQLiteConnection:
    def __init__(self, thread: SQLiteThread) -> None:
        self._thread = thread

    async def execute(self, sql: str, *args: Any) -> None:
        q = _sqlite_sql(sql)
        await _run(self._thread, lambda c: c.execute(q, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        q = _sqlite_sql(sql)
        batch = [tuple(r) for r in rows]
        await _run(self._thread, lambda c: c.executemany(q, batch))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        q = _sqlite_sql(sql)
        rows: list[Row] = await _run(self._thread, lambda c: c.execute(q, args).fetchall())
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        q = _sqlite_sql(sql)
        row: Row | None = await _run(self._thread, lambda c: c.execute(q, args).fetchone())
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class SQLiteDatabase(_SQLiteConnection):
    """Writes (autocommit statements and transactions) go one at a time through a writer thread;
    reads outside transactions see the last commit (WAL), on the event loop where they are
    quick (see the module's doc)."""

    kind: Kind = "sqlite"

    def __init__(self, path: str, *, loop_reads: float | None = None) -> None:
        """`loop_reads`: how long a read may run on the event loop (`LoopFirstReader`)."""
        super().__init__(LoopFirstReader("jacameno-sqlite-reader", _opener(path), loop_reads))
        self._writer = SQLiteThread("jacameno-sqlite-writer", _opener(path))
        self._path = path

    @classmethod
    async def open(cls, path: str | Path, *, loop_reads: float | None = None) -> SQLiteDatabase:
        db = cls(str(path), loop_reads=loop_reads)
        try:
            await db.fetchval("SELECT 1")
        except BaseException:
            await db.close()
            raise
        return db

    async def execute(self, sql: str, *args: Any) -> None:
        async with write_turn(self._path).hold():
            await _SQLiteConnection(self._writer).execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with write_turn(self._path).hold():
            await _SQLiteConnection(self._writer).executemany(sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with write_turn(self._path).hold():
            try:
                # Inside the try: a caller cancelled while BEGIN runs in the writer thread would
                # otherwise leave the transaction open for the next one (the rollback below is
                # queued behind BEGIN on the same thread, and sees it).
                await _run(self._writer, lambda c: c.execute("BEGIN IMMEDIATE"))
                yield _SQLiteConnection(self._writer)
                await _run(self._writer, lambda c: c.execute("COMMIT"))
            except BaseException:
                try:
                    await _run(self._writer, _rollback)
                except DatabaseError as exc:  # what ended the transaction is raised below
                    logger.warning(
                        "rollback failed",
                        extra={"action": "sql.rollback_failed", "error": repr(exc)},
                    )
                raise

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        yield self  # each statement takes its write turn as any other

    async def close(self) -> None:
        await self._writer.close()
        await self._thread.close()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
