"""A small async SQL layer over Postgres (asyncpg) and SQLite, for read models and app tables.

SQL is written once with `$1, $2` placeholders (SQLite gets them rewritten to `?1, ?2`; do not put
`$<digit>` inside string literals). Rows answer both `row["column"]` and `row[0]`. Errors
(`sqldb.errors`): `IntegrityError` for constraint violations, `DatabaseUnavailable` when the
database cannot be reached or failed, `RowCountError` when `execute_changing` changed another
number of rows than it was to; all are `DatabaseError`s; a bug in the caller (a TypeError
from a wrong argument) passes through as itself. The methods of `Database` itself run in
autocommit; use `transaction()` for several statements that must commit together.

Backends: `sqldb.postgres` (an asyncpg pool), `sqldb.sqlite` (a writer and a reader thread).
Schema migrations: `sqldb.migrate`. This package imports nothing of ours but `dbdrivers`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

from sqldb.errors import DatabaseError, DatabaseUnavailable, IntegrityError, RowCountError
from sqldb.postgres import READ_MODELS_SCHEMA, PostgresDatabase
from sqldb.sqlite import SQLiteDatabase

Kind = Literal["sqlite", "postgres"]


class Row(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...


class Connection(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def execute_changing(self, count: int, sql: str, *args: Any) -> None:
        """A write that must change exactly `count` rows (a conditional UPDATE: the rows as
        the caller last saw them), else `RowCountError`, which in a transaction rolls it back.
        In a transaction on SQLite it is raised where the statement's other errors are: by the
        next statement that returns rows, or as the block exits."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Connection, Protocol):
    kind: Kind

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """One transaction: commits when the block exits, rolls back if it raises. On SQLite
        the statements that return nothing run with the next one that returns rows, or at the
        commit, so their errors are raised there (`sqldb.sqlite`). On both, once a statement
        failed the later ones and the commit fail too: the transaction can only roll back."""
        ...

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """One connection held for a series of statements, each its own transaction: Postgres
        takes it from the pool once (not for every statement) and gives it back when the block
        exits; SQLite's statements go as the database's own do."""
        ...

    async def close(self) -> None: ...


async def open_database(
    url: str, *, pool_size: int = 5, sqlite_loop_reads: float | None = None
) -> Database:
    """Open `sqlite:///path` (its reads tried on the event loop for `sqlite_loop_reads` seconds
    at most, `dbdrivers.sqlite.LoopFirstReader`) or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return await SQLiteDatabase.open(
            url.removeprefix("sqlite:///"), loop_reads=sqlite_loop_reads
        )
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresDatabase.open(url, pool_size=pool_size)
    raise DatabaseError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


__all__ = [
    "READ_MODELS_SCHEMA",
    "Connection",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "IntegrityError",
    "Kind",
    "PostgresDatabase",
    "Row",
    "RowCountError",
    "SQLiteDatabase",
    "open_database",
]
