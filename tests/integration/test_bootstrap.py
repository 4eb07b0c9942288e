"""The composition root's core is all a command without HTTP needs (a worker, a replay): from
the settings alone, the log, the tables, the read models and the blob storage, on either
database. That it imports
nothing of HTTP, Redis or collaboration is an import-linter contract (pyproject.toml)."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from pathlib import Path

import pytest

import sqldb.migrate
from domain.roles import OWNER
from jacameno import bootstrap
from jacameno.bootstrap.core import migrate
from jacameno.projects.service import Projects
from jacameno.settings import Settings
from jacameno.storage.local import LocalBlobStore
from projections.projects import ProjectsReadModel
from sqldb.sqlite import SQLiteDatabase


async def test_the_core_runs_project_commands_and_read_models(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "JACAMENO_ENV": "test",
            "JACAMENO_DATA_DIR": str(tmp_path / "data"),
            "JACAMENO_DATABASE_URL": database_url,
        }
    )
    owner = str(uuid.uuid4())
    async with bootstrap.core(settings) as core:
        reads = ProjectsReadModel(core.db)
        view = await Projects(core.store, core.runner, reads).create(owner, "Song")
        state = await reads.state(view.id)
        assert state is not None
        assert state.roles == {owner: OWNER}
        head = await core.store.head_position()
        # The command waited for the projects model only; the others follow within moments.
        await core.runner.wait_for(head)
        assert {s.name: s.position for s in await core.runner.status()} == {
            "projects": head,
            "document": head,
            "analytics": head,
            "assets": head,
            "ai_jobs": head,
            "catalog": head,
        }
        # ... and the blob storage, on local files under the data folder by default.
        assert isinstance(core.blobs, LocalBlobStore)
        assert core.blobs.root == tmp_path / "data" / "blobs"


async def test_migrating_a_sqlite_file_waits_for_a_transaction_of_the_same_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second server of one process starts while the first holds SQLite's write lock in a
    transaction that needs the event loop to end: the migration waits for it, beside the loop,
    instead of holding the loop through the whole busy timeout and failing."""
    settings = Settings.from_env(
        {"JACAMENO_ENV": "test", "JACAMENO_DATA_DIR": str(tmp_path / "data")}
    )
    await migrate(settings)
    loop = asyncio.get_running_loop()
    began = asyncio.Event()

    def migrate_sqlite(path: str) -> list[str]:  # the real one, once it is known to run
        loop.call_soon_threadsafe(began.set)
        return sqldb.migrate.migrate_sqlite(path)

    # By module: the package `jacameno.bootstrap` has a function named `core`.
    core_module = importlib.import_module("jacameno.bootstrap.core")
    monkeypatch.setattr(core_module, "migrate_sqlite", migrate_sqlite)
    db = await SQLiteDatabase.open(settings.sqlite_path)
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE held (x INTEGER)")
            # the write lock, held (a statement that returns rows runs those before it)
            assert await conn.fetchval("SELECT count(*) FROM held") == 0
            migrating = asyncio.create_task(migrate(settings))
            await asyncio.wait_for(began.wait(), 5)
            # The loop still turns while the migration waits: this transaction goes on.
            assert await conn.fetchval("INSERT INTO held VALUES (1) RETURNING x") == 1
            assert not migrating.done()
        assert await asyncio.wait_for(migrating, 5) == []
    finally:
        await db.close()
