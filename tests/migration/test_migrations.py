"""The migrations add up to the schema the code declares, and applying them is safe to repeat,
to race, and refuses files changed after they were applied."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from eventstore.memory import MemoryEventStore
from projections.registry import read_models
from projections.runner import ProjectionRunner
from sqldb import Kind, open_database
from sqldb.migrate import MigrationError, load, migrate_postgres, migrate_sqlite, migrations_root
from tests.migration.schemas import MIGRATED_READ_MODELS, expected, read_model_tables


async def pg_schema(url: str) -> tuple[dict[str, dict[str, str]], set[tuple[str, tuple[str, ...]]]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema IN ('public', 'readmodels')"
        )
        unique_rows = await conn.fetch(
            """
            SELECT t.relname, array_agg(a.attname ORDER BY k.ord)
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname IN ('public', 'readmodels')
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE i.indisunique
            GROUP BY t.relname, i.indexrelid
            """
        )
    finally:
        await conn.close()
    tables: dict[str, dict[str, str]] = {}
    for r in rows:
        tables.setdefault(r[0], {})[r[1]] = r[2]
    return tables, {(r[0], tuple(r[1])) for r in unique_rows}


_FTS5 = {"data", "idx", "content", "docsize", "config"}


def sqlite_schema(path: Path) -> tuple[dict[str, dict[str, str]], set[tuple[str, tuple[str, ...]]]]:
    conn = sqlite3.connect(path)
    try:
        listed = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        # An FTS5 table's shadow tables (<name>_data, _idx, ...) are part of it, not tables of ours.
        virtual = [name for name, sql in listed if sql.upper().startswith("CREATE VIRTUAL")]
        names = [
            name
            for name, _ in listed
            if not any(name.startswith(f"{v}_") and name[len(v) + 1 :] in _FTS5 for v in virtual)
        ]
        tables = {
            name: {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({name})")} for name in names
        }
        unique: set[tuple[str, tuple[str, ...]]] = set()
        for name in names:
            pk = tuple(
                r[1]
                for r in sorted(conn.execute(f"PRAGMA table_info({name})"), key=lambda r: r[5])
                if r[5]
            )
            if pk:
                unique.add((name, pk))
            for index in conn.execute(f"PRAGMA index_list({name})"):
                if index[2]:
                    cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({index[1]})"))
                    unique.add((name, cols))
    finally:
        conn.close()
    return tables, unique


def check(
    kind: Kind,
    actual: dict[str, dict[str, str]],
    actual_unique: set[tuple[str, tuple[str, ...]]],
    *,
    prepared: bool = False,
) -> None:
    """The application's tables are those declared; the read models' tables present (those
    the migrations made, or with `prepared` all of them, made by the runner) are as declared."""
    tables, unique = expected(kind)
    models = {t.name: t for t in read_model_tables()}
    for model in models.values():
        if model.search is None or kind == "postgres":  # an FTS5 table enforces no key
            unique.setdefault(model.name, []).append(model.key)
    actual = {t: cols for t, cols in actual.items() if t != "schema_migrations"}
    present = set(actual) & set(models)
    assert present == (set(models) if prepared else MIGRATED_READ_MODELS), "read models differ"
    assert set(actual) - present == set(tables), "tables differ from the declared schema"
    tables.update({name: models[name].types(kind) for name in present})
    for table, columns in tables.items():
        assert actual[table] == columns, f"{kind} table {table} differs"
    for table, keys in unique.items():
        for key in keys:
            if table in actual:
                assert (table, key) in actual_unique, f"{kind}: no unique index {table}{key}"


async def prepare_read_models(url: str) -> None:
    """What the runner does at start: create the read models' tables where missing."""
    store = MemoryEventStore()
    db = await open_database(url)
    try:
        await ProjectionRunner(store, db, read_models(store)).prepare()
    finally:
        await db.close()


async def test_postgres_migrations_add_up_to_the_declared_schema(empty_pg_url: str) -> None:
    applied = await migrate_postgres(empty_pg_url)
    assert applied == [m.version for m in load("postgres")]
    check("postgres", *await pg_schema(empty_pg_url))
    await prepare_read_models(empty_pg_url)
    check("postgres", *await pg_schema(empty_pg_url), prepared=True)


async def test_sqlite_migrations_add_up_to_the_declared_schema(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    assert migrate_sqlite(path) == [m.version for m in load("sqlite")]
    check("sqlite", *sqlite_schema(path))
    await prepare_read_models(f"sqlite:///{path}")
    check("sqlite", *sqlite_schema(path), prepared=True)


def test_both_kinds_have_the_same_migration_versions() -> None:
    assert [(m.version, m.name) for m in load("postgres")] == [
        (m.version, m.name) for m in load("sqlite")
    ]


async def test_postgres_migrate_twice_applies_nothing_the_second_time(empty_pg_url: str) -> None:
    await migrate_postgres(empty_pg_url)
    assert await migrate_postgres(empty_pg_url) == []


async def test_postgres_migrate_from_two_processes_at_once(empty_pg_url: str) -> None:
    command = [sys.executable, "-m", "jacameno", "migrate", "--database-url", empty_pg_url]
    procs = [
        await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    reports = sorted(out.decode().strip() for out, _ in outputs)
    assert reports.count("postgres: up to date") == 2, reports
    check("postgres", *await pg_schema(empty_pg_url))


def test_sqlite_migrate_from_two_processes_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    command = [sys.executable, "-m", "jacameno", "migrate", "--database-url", url]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    reports = sorted(out.decode().strip() for out, _ in outputs)
    assert reports.count("sqlite: up to date") == 2, reports
    check("sqlite", *sqlite_schema(tmp_path / "race.db"))


def test_a_migration_changed_after_it_was_applied_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations_root(), root)
    path = tmp_path / "j.db"
    migrate_sqlite(path, root)
    first = sorted((root / "sqlite").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate_sqlite(path, root)


def test_a_badly_named_migration_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations_root(), root)
    (root / "sqlite" / "9999-Bad Name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name"):
        load("sqlite", root)


def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    root = tmp_path / "migrations"
    shutil.copytree(migrations_root(), root)
    (root / "sqlite" / "9999_broken.sql").write_text(
        "CREATE TABLE half (id INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    path = tmp_path / "j.db"
    with pytest.raises(MigrationError):
        migrate_sqlite(path, root)
    tables, _ = sqlite_schema(path)
    assert "half" not in tables
