"""Reused test databases (harness/pgreuse.py): a database a test dirtied the way the app does
(events appended, read models rebuilt beside the live ones, objects of its own, privileges) comes
back from a reset equal to a fresh clone of the template, in its catalog and in every table's
rows, under a new name; a session left holding locks does not stop the reset; and a database
the reset cannot restore is dropped, never handed on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from eventstore import ANY, NewEvent
from eventstore.postgres import PostgresEventStore
from harness.databases import postgres_database, with_database
from harness.pgreuse import DatabasePool, catalog
from jacameno import cli


def _name(url: str) -> str:
    return urlsplit(url).path.removeprefix("/")


async def _databases(admin_url: str) -> set[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        return {str(r[0]) for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def _contents(url: str) -> tuple[list[str], dict[str, list[str]]]:
    """The catalog of the database of `url`, and every table's rows as sorted text."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        rows = {
            str(t[0]): sorted(str(r[0]) for r in await conn.fetch(f"SELECT x::text FROM {t[0]} x"))
            for t in tables
        }
        return await catalog(conn), rows
    finally:
        await conn.close()


async def _dirty(url: str) -> None:
    """Use the database as tests and the app do."""
    store = await PostgresEventStore.open(url)
    try:
        await store.append("project-1", [NewEvent("e", b"{}", idempotency_key="k")], ANY)
    finally:
        await store.close()
    for name in ("projects", "document", "catalog"):
        args = ["projections", "--database-url", url, "rebuild", name]
        assert await asyncio.to_thread(cli.main, args) == 0
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE SCHEMA scratch;"
            " CREATE TYPE scratch.mood AS ENUM ('a', 'b');"
            " CREATE TABLE readmodels.extra (id SERIAL PRIMARY KEY, mood scratch.mood);"
            " INSERT INTO readmodels.extra (mood) VALUES ('a');"
            " CREATE VIEW public.extra_view AS SELECT count(*) FROM es_events;"
            " CREATE SEQUENCE public.counter; SELECT nextval('public.counter');"
            " CREATE FUNCTION public.one() RETURNS int LANGUAGE sql AS 'SELECT 1';"
            " INSERT INTO projection_checkpoints (name, position, updated_at)"
            "  VALUES ('scratch', 3, 0) ON CONFLICT DO NOTHING;"
            " DELETE FROM schema_migrations WHERE version = (SELECT max(version)"
            "  FROM schema_migrations);"
            " GRANT SELECT ON es_events TO PUBLIC;"
            f" ALTER DATABASE {_name(url)} SET work_mem = '8MB';"
        )
    finally:
        await conn.close()


@pytest.fixture
async def pool(postgres_url: str, pg_template: str) -> AsyncIterator[DatabasePool]:
    made = DatabasePool(postgres_url, pg_template, prefix="jt_reuse")
    try:
        yield made
    finally:
        await made.close()


async def test_a_reset_database_equals_a_fresh_clone_under_a_new_name(
    pool: DatabasePool, postgres_url: str, pg_template: str
) -> None:
    used = await pool.take()
    fresh = await _contents(used)
    await _dirty(used)
    assert await _contents(used) != fresh
    await pool.give_back(used)
    again = await pool.take()
    try:
        assert _name(again) != _name(used)
        assert _name(used) not in await _databases(postgres_url)
        async with postgres_database(postgres_url, template=pg_template) as clone:
            assert await _contents(again) == await _contents(clone) == fresh
    finally:
        await pool.give_back(again)
    assert len(pool.idle) == 1


async def test_a_session_left_holding_locks_does_not_stop_the_reset(pool: DatabasePool) -> None:
    used = await pool.take()
    fresh = await _contents(used)
    leaked = await asyncpg.connect(used)
    try:
        transaction = leaked.transaction()
        await transaction.start()
        await leaked.execute("LOCK TABLE es_events, es_sequencer IN ACCESS EXCLUSIVE MODE")
        await leaked.execute("UPDATE es_sequencer SET position = 9")
        await pool.give_back(used)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await leaked.fetchval("SELECT 1")
    finally:
        leaked.terminate()
    [idle] = pool.idle
    assert await _contents(with_database(pool.admin_url, idle)) == fresh


async def test_a_database_the_reset_cannot_restore_is_dropped(
    pool: DatabasePool, postgres_url: str
) -> None:
    used = await pool.take()
    conn = await asyncpg.connect(used)
    try:
        await conn.execute("ALTER TABLE es_events ADD COLUMN extra TEXT")
    finally:
        await conn.close()
    await pool.give_back(used)
    assert pool.idle == []
    [failure] = pool.failures
    assert "differs from the template" in failure
    assert "extra" in failure
    assert _name(used) not in await _databases(postgres_url)
