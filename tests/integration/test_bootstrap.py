"""The composition root's core is all a command without HTTP needs (a worker, a replay): from
the settings alone, the log, the tables, the read models and the blob storage, on either
database. That it imports
nothing of HTTP, Redis or collaboration is an import-linter contract (pyproject.toml)."""

from __future__ import annotations

import uuid
from pathlib import Path

from domain.roles import OWNER
from jacameno import bootstrap
from jacameno.projects.service import Projects
from jacameno.settings import Settings
from jacameno.storage.local import LocalBlobStore
from projections.projects import ProjectsReadModel


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
