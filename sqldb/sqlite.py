"""The SQL layer on SQLite: writes (autocommit statements and transactions) go one at a time
through a writer thread, a transaction's statements in few hops (`_SQLiteTransaction`); reads
outside transactions see the last commit (WAL) and are tried on the event loop first, then made
in a reader thread if they run long, meet a lock or write (`dbdrivers.sqlite.LoopFirstReader`).
Every connection has the pragmas every SQLite connection of ours has (`dbdrivers.sqlite`)."""

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
from sqldb.errors import DatabaseError, DatabaseUnavailable, IntegrityError, RowCountError

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

    async def _write(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        await _run(self._thread, fn)

    async def _query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await _run(self._thread, fn)

    async def execute(self, sql: str, *args: Any) -> None:
        q = _sqlite_sql(sql)
        await self._write(lambda c: c.execute(q, args))

    async def execute_changing(self, count: int, sql: str, *args: Any) -> None:
        q = _sqlite_sql(sql)
        await self._write(lambda c: _changed(count, c, q, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        q = _sqlite_sql(sql)
        batch = [tuple(r) for r in rows]
        await self._write(lambda c: c.executemany(q, batch))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        q = _sqlite_sql(sql)
        rows: list[Row] = await self._query(lambda c: c.execute(q, args).fetchall())
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        q = _sqlite_sql(sql)
        row: Row | None = await self._query(lambda c: c.execute(q, args).fetchone())
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class _SQLiteTransaction(_SQLiteConnection):
    """A transaction's statements in the writer thread, few hops to it: BEGIN and the
    statements that return nothing wait, and go with the next statement that returns rows, or
    with COMMIT, as one job of the thread. Each hop costs the event loop a turn and a wakeup,
    and the thread a wait for the GIL, where a read model's statement runs in microseconds, and
    the file's write lock is held from the first hop to the COMMIT: a projection's batch (BEGIN,
    the checkpoint moved from where it was, its rows, COMMIT) is one hop, not four or more. So
    the error of a statement that returns nothing is raised by the next statement that returns
    rows, or as the transaction's block exits. Once a statement failed, every later one and the
    commit fail too (as on Postgres): the statements that waited behind the failed one never
    ran, so the transaction can only roll back, even if the block catches the error. Its
    arguments are bound when it runs: pass values, not objects the caller changes
    afterwards."""

    def __init__(self, thread: SQLiteThread) -> None:
        super().__init__(thread)
        self._pending: list[Callable[[sqlite3.Connection], object]] = [_begin]
        self.begun = False  # BEGIN went to the thread
        self._failed: BaseException | None = None

    def _check(self) -> None:
        if self._failed is not None:
            raise DatabaseError(
                f"sqlite: an earlier statement of this transaction failed: {self._failed!r}"
            ) from self._failed

    async def _write(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        self._check()
        self._pending.append(fn)

    async def _query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check()
        pending, self._pending = self._pending, []
        if pending:
            self.begun = True

        def job(conn: sqlite3.Connection) -> T:
            for each in pending:
                each(conn)
            return fn(conn)

        try:
            return await _run(self._thread, job)
        except BaseException as exc:
            self._failed = exc
            raise

    async def commit(self) -> None:
        """Run what waits, then COMMIT (nothing at all if nothing ran)."""
        if self._pending == [_begin]:
            self._pending = []
            return
        await self._query(_commit)


def _changed(count: int, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> None:
    """Run `sql`; RowCountError unless it changed `count` rows. Counted by SQLite's
    `changes()`, not the cursor's rowcount, which Python gives only to statements that begin
    with their verb (-1 for `WITH ... UPDATE`)."""
    conn.execute(sql, args)
    changed = int(conn.execute("SELECT changes()").fetchone()[0])
    if changed != count:
        raise RowCountError(changed, count)


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


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
        """See `_SQLiteTransaction` for when its statements run, and when their errors are
        raised."""
        async with write_turn(self._path).hold():
            transaction = _SQLiteTransaction(self._writer)
            try:
                yield transaction
                await transaction.commit()
            except BaseException:
                if transaction.begun:
                    # Also after a cancellation while a job of it ran in the writer thread:
                    # the rollback is queued behind that job on the same thread, and sees it.
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
