"""Throwaway databases: Postgres databases made on a server (empty, migrated, or cloned from a
migrated template) and dropped afterwards, and migrated SQLite files in a folder; and the event
store of a database, opened beside the server that writes it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from eventstore import EventStore
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from sqldb.migrate import migrate_postgres, migrate_sqlite

SQLITE_PREFIX = "sqlite:///"


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_lock_timeout(url: str, timeout: str = "100ms") -> str:
    """The same URL, whose sessions wait at most `timeout` for a lock (a parameter of the URL
    overrides the session settings of ours)."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}lock_timeout={timeout}"))


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(
    admin_url: str, *, template: str | None = None, name: str | None = None, prefix: str = "jt"
) -> str:
    """Create a database (from `template` if given) named `name`, else `prefix` and a random
    suffix; return its name. A database already called `name` is dropped first."""
    if name is not None:
        await drop_database(admin_url, name)
    name = name or f"{prefix}_{uuid.uuid4().hex[:16]}"
    clause = f" TEMPLATE {template}" if template else ""
    await _admin(admin_url, f"CREATE DATABASE {name}{clause}")
    return name


async def drop_database(admin_url: str, name: str) -> None:
    await _admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def migrated_template(admin_url: str) -> str:
    """A new database with every migration applied, to clone fresh databases from."""
    name = await create_database(admin_url)
    await migrate_postgres(with_database(admin_url, name))
    return name


@contextlib.asynccontextmanager
async def postgres_database(
    admin_url: str,
    *,
    template: str | None = None,
    migrate: bool = False,
    name: str | None = None,
    prefix: str = "jt",
    keep: bool = False,
) -> AsyncIterator[str]:
    """The URL of a new database on the server of `admin_url` (see `create_database`),
    `migrate`d if asked; dropped when the block ends unless `keep`."""
    name = await create_database(admin_url, template=template, name=name, prefix=prefix)
    url = with_database(admin_url, name)
    try:
        if migrate:
            await migrate_postgres(url)
        yield url
    finally:
        if not keep:
            await drop_database(admin_url, name)


async def open_store(database_url: str) -> EventStore:
    """The event store of a server's database, opened beside it (to read what it logged):
    `sqlite:///PATH` or a Postgres URL, as JACAMENO_DATABASE_URL spells them."""
    if database_url.startswith(SQLITE_PREFIX):
        return await SQLiteEventStore.open(Path(database_url.removeprefix(SQLITE_PREFIX)))
    return await PostgresEventStore.open(database_url)


def migrated_sqlite(folder: Path) -> Path:
    """A new SQLite file in `folder` with every migration applied."""
    path = folder / f"{uuid.uuid4().hex[:8]}.db"
    migrate_sqlite(path)
    return path
