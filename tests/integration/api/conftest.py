"""API tests run on both configurations: embedded (SQLite, in-process limits and sessions) and
Postgres + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.settings import app_settings
from jacameno.settings import Settings
from tests.integration.api.support import Api, running


@pytest.fixture(params=["embedded", "postgres"])
def api_config(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "embedded":
        return app_settings(tmp_path, None, None)
    database_url: str = request.getfixturevalue("fresh_pg_url")
    redis_url: str = request.getfixturevalue("redis_url")
    return app_settings(tmp_path, database_url, redis_url)


@pytest.fixture
async def api(api_config: Settings) -> AsyncIterator[Api]:
    async with running(api_config) as api:
        yield api
