"""The SQL layer on Postgres: an asyncpg pool whose connections carry the session settings every
connection of ours shares (`dbdrivers.postgres`). Only the driver's and the network's errors are
translated; a bug in the caller passes through as itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from dbdrivers.postgres import (
    DRIVER_ERRORS,
    SESSION,
    UNAVAILABLE,
    give_back,
    keep_session,
    on_pool,
    server_settings,
)
from sqldb.errors import DatabaseError, DatabaseUnavailable, IntegrityError, RowCountError

if TYPE_CHECKING:
    from sqldb import Connection, Kind, Row

logger = logging.getLogger(__name__)


def _pg_error(exc: BaseException) -> DatabaseError:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(exc))
    if isinstance(exc, UNAVAILABLE):
        return DatabaseUnavailable(f"postgres: {type(exc).__name__}: {exc}")
    return DatabaseError(f"postgres: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The driver's and the network's errors as the SQL layer's; anything else as itself."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise _pg_error(exc) from exc


_Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
T = TypeVar("T")


class _Statements:
    """The SQL layer's statements, each run by `_on` (on a held connection, or on the pool)."""

    async def _on(self, statement: Callable[[_Conn], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def execute(self, sql: str, *args: Any) -> None:
        with _translated():
            await self._on(lambda conn: conn.execute(sql, *args))

    async def execute_changing(self, count: int, sql: str, *args: Any) -> None:
        with _translated():
            status: str = await self._on(lambda conn: conn.execute(sql, *args))
        changed = int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "DELETE 0", "INSERT 0 1"
        if changed != count:
            raise RowCountError(changed, count)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        with _translated():
            await self._on(lambda conn: conn.executemany(sql, batch))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        with _translated():
            return list(await self._on(lambda conn: conn.fetch(sql, *args)))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        with _translated():
            row: Row | None = await self._on(lambda conn: conn.fetchrow(sql, *args))
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        with _translated():
            return await self._on(lambda conn: conn.fetchval(sql, *args))


class _PgConnection(_Statements):
    """Statements on one connection the caller holds (a transaction's, `connection()`'s)."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    async def _on(self, statement: Callable[[_Conn], Awaitable[T]]) -> T:
        return await statement(self._conn)


# The schema of the read models (migration 0009); analysts are granted exactly this one.
READ_MODELS_SCHEMA = "readmodels"


class PostgresDatabase(_Statements):
    kind: Kind = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _on(self, statement: Callable[[_Conn], Awaitable[T]]) -> T:
        # Each statement on a connection of its own, given back without delaying its caller.
        return await on_pool(self._pool, statement)

    @classmethod
    async def open(
        cls, dsn: str, *, pool_size: int = 5, session: Mapping[str, str] | None = None
    ) -> PostgresDatabase:
        """A pool on `dsn`; `session` overrides settings of dbdrivers.postgres.SESSION for this
        pool's connections (the URL's query still wins)."""
        with _translated():
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=10,
                command_timeout=15,
                # A transaction (a projection's checkpoint lock, a refresh session's row) is never
                # left holding locks for long when this node stalls or loses its link.
                # Read models live in their own schema (projections/tables.py); unqualified
                # names find them after the application's own tables.
                server_settings=server_settings(
                    dsn,
                    "jacameno-sql",
                    {
                        **SESSION,
                        "search_path": f"public, {READ_MODELS_SCHEMA}",
                        **(session or {}),
                    },
                ),
                reset=keep_session,
            )
        return cls(pool)

    # A transaction's connection and `connection()`'s are given back in the background too
    # (`give_back`): the caller goes on in the turn its commit's answer comes.

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            conn = await self._pool.acquire()
            try:
                async with conn.transaction():
                    yield _PgConnection(conn)
            finally:
                give_back(self._pool, conn)
        except DatabaseError:
            raise
        except DRIVER_ERRORS as exc:
            raise _pg_error(exc) from exc

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        with _translated():
            held = await self._pool.acquire()
        try:
            yield _PgConnection(held)
        finally:
            give_back(self._pool, held)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), 5)
        except Exception as exc:  # closing: the connections are dropped either way
            logger.warning(
                "the SQL pool did not close cleanly",
                extra={"action": "sql.close_failed", "error": repr(exc)},
            )
