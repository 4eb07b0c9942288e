"""A database failure is a 503 `unavailable` with a retry hint, whichever layer met it: the SQL
layer (the user behind a token) or the event store (the new project's events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from harness.databases import with_lock_timeout
from harness.settings import app_settings
from tests.integration.api.support import Api, running


@pytest.fixture
async def api(tmp_path: Path, fresh_pg_url: str, redis_url: str) -> AsyncIterator[Api]:
    settings = app_settings(tmp_path, with_lock_timeout(fresh_pg_url), redis_url)
    async with running(settings) as api:
        yield api


@pytest.mark.parametrize("table", ["users", "es_events"], ids=["sql-layer", "event-store"])
async def test_a_lock_wait_that_times_out_is_503_whichever_layer_met_it(
    api: Api, fresh_pg_url: str, table: str
) -> None:
    owner = await api.member("owner")
    holder = await asyncpg.connect(fresh_pg_url)
    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            response = await api.client.post(
                "/api/projects", json={"title": "Song"}, headers=owner.headers
            )
    finally:
        await holder.close()
    assert (response.status_code, response.json()["error"]["code"]) == (503, "unavailable")
    assert response.headers["retry-after"] == "1"
    # Once the lock is gone, the same request succeeds.
    await api.project(owner)


async def test_metrics_answer_while_the_projection_status_cannot_be_read(
    api: Api, fresh_pg_url: str
) -> None:
    holder = await asyncpg.connect(fresh_pg_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE projection_failures IN ACCESS EXCLUSIVE MODE")
            response = await api.client.get("/metrics")
    finally:
        await holder.close()
    assert response.status_code == 200
    assert "jacameno_http_request_duration_seconds" in response.text
    assert 'jacameno_projection_lag_events{projection="projects"}' not in response.text
