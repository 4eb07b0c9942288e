"""Fresh, migrated databases for tests: Postgres databases cloned from a migrated template, and
SQLite files migrated in a temporary folder."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sqldb.migrate import migrate_postgres, migrate_sqlite


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


async def create_database(admin_url: str, *, template: str | None = None) -> str:
    """Create a uniquely named database (from `template` if given); return its name."""
    name = f"jt_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin_url)
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await conn.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await conn.close()
    return name


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def migrated_template(admin_url: str) -> str:
    """A new database with every migration applied, to clone fresh databases from."""
    name = await create_database(admin_url)
    await migrate_postgres(with_database(admin_url, name))
    return name


def migrated_sqlite(folder: Path) -> Path:
    path = folder / f"{uuid.uuid4().hex[:8]}.db"
    migrate_sqlite(path)
    return path
