"""Collaboration tests run against a real server on each log: SQLite (embedded) and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.settings import app_settings
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, serving


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return app_settings(tmp_path, None)
    database_url: str = request.getfixturevalue("fresh_pg_url")
    return app_settings(tmp_path, database_url)


@pytest.fixture
def config() -> CollabConfig:
    """Tests override this fixture (or pass their own config to `serving`)."""
    return CollabConfig(unload_delay=0.2)


@pytest.fixture
async def server(settings: Settings, config: CollabConfig) -> AsyncIterator[Server]:
    async with serving(settings, config) as running:
        yield running
