"""A small async SQL layer over Postgres (asyncpg) and SQLite, for read models and app tables.

SQL is written once with `$1, $2` placeholders (SQLite gets them rewritten to `?1, ?2`; do not put
`$<digit>` inside string literals). Rows answer both `row["column"]` and `row[0]`. Errors:
`IntegrityError` for constraint violations, `DatabaseUnavailable` when the database cannot be
reached; both are `DatabaseError`s. The methods of `Database` itself run in autocommit; use
`transaction()` for several statements that must commit together."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import asyncpg

from eventstore.pgsession import SESSION, keep_session, server_settings

T = TypeVar("T")
Kind = Literal["sqlite", "postgres"]
_PLACEHOLDER = re.compile(r"\$(\d+)")


class DatabaseError(Exception):
    """Base of the SQL layer's errors."""


class IntegrityError(DatabaseError):
    """A constraint (unique, foreign key, check, not null) refused the statement."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or failed."""


class Row(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...


class Connection(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Connection, Protocol):
    kind: Kind

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """One transaction: commits when the block exits, rolls back if it raises."""
        ...

    async def close(self) -> None: ...


async def open_database(url: str, *, pool_size: int = 5) -> Database:
    """Open `sqlite:///path` or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return await SQLiteDatabase.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresDatabase.open(url, pool_size=pool_size)
    raise DatabaseError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


# -- Postgres ------------------------------------------------------------------------------

_PG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
)


def _pg_error(exc: Exception) -> DatabaseError:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(exc))
    if isinstance(exc, _PG_UNAVAILABLE):
        return DatabaseUnavailable(f"postgres: {type(exc).__name__}: {exc}")
    return DatabaseError(f"postgres: {type(exc).__name__}: {exc}")


class _PgConnection:
    def __init__(
        self, conn: asyncpg.Connection | asyncpg.Pool | asyncpg.pool.PoolConnectionProxy
    ) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self._conn.execute(sql, *args)
        except Exception as exc:
            raise _pg_error(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, list(rows))
        except Exception as exc:
            raise _pg_error(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._conn.fetch(sql, *args))
        except Exception as exc:
            raise _pg_error(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = await self._conn.fetchrow(sql, *args)
        except Exception as exc:
            raise _pg_error(exc) from exc
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self._conn.fetchval(sql, *args)
        except Exception as exc:
            raise _pg_error(exc) from exc


class PostgresDatabase(_PgConnection):
    kind: Kind = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 5) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=10,
                command_timeout=15,
                # A transaction (a projection's checkpoint lock, a refresh session's row) is never
                # left holding locks for long when this node stalls or loses its link.
                server_settings=server_settings(dsn, "jacameno-sql", SESSION),
                reset=keep_session,
            )
        except Exception as exc:
            raise _pg_error(exc) from exc
        return cls(pool)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PgConnection(conn)
        except DatabaseError:
            raise
        except asyncpg.PostgresError as exc:
            raise _pg_error(exc) from exc
        except (OSError, asyncpg.InterfaceError) as exc:
            raise _pg_error(exc) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._pool.close(), 5)


# -- SQLite --------------------------------------------------------------------------------


def _sqlite_error(exc: sqlite3.Error) -> DatabaseError:
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return DatabaseUnavailable(f"sqlite: {exc}")
    return DatabaseError(f"sqlite: {exc}")


class _SQLiteThread:
    """A connection used only from its own thread; statements run there, off the event loop."""

    def __init__(self, path: str) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="jacameno-sqlite")
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.row_factory = sqlite3.Row
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "busy_timeout=30000",
                "foreign_keys=ON",
            ):
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    async def run(self, fn: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)


class _SQLiteConnection:
    def __init__(self, thread: _SQLiteThread) -> None:
        self._thread = thread

    async def execute(self, sql: str, *args: Any) -> None:
        q = _PLACEHOLDER.sub(r"?\1", sql)
        await self._thread.run(lambda c: c.execute(q, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        q = _PLACEHOLDER.sub(r"?\1", sql)
        batch = [tuple(r) for r in rows]
        await self._thread.run(lambda c: c.executemany(q, batch))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        q = _PLACEHOLDER.sub(r"?\1", sql)
        rows: list[Row] = await self._thread.run(lambda c: c.execute(q, args).fetchall())
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        q = _PLACEHOLDER.sub(r"?\1", sql)
        row: Row | None = await self._thread.run(lambda c: c.execute(q, args).fetchone())
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class SQLiteDatabase(_SQLiteConnection):
    """Writes (autocommit statements and transactions) go one at a time through a writer thread;
    reads outside transactions use a reader thread and see the last commit (WAL)."""

    kind: Kind = "sqlite"

    def __init__(self, path: str) -> None:
        super().__init__(_SQLiteThread(path))
        self._writer = _SQLiteThread(path)
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteDatabase:
        db = cls(str(path))
        await db.fetchval("SELECT 1")
        return db

    async def execute(self, sql: str, *args: Any) -> None:
        async with self._write_lock:
            await _SQLiteConnection(self._writer).execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._write_lock:
            await _SQLiteConnection(self._writer).executemany(sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._write_lock:
            await self._writer.run(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _SQLiteConnection(self._writer)
                await self._writer.run(lambda c: c.execute("COMMIT"))
            except BaseException:
                with contextlib.suppress(DatabaseError):
                    await self._writer.run(_rollback)
                raise

    async def close(self) -> None:
        await self._writer.close()
        await self._thread.close()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
