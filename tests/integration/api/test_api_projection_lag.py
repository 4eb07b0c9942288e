"""The projections' lag and failures on `/metrics`, and `/readyz` told to require a maximum lag
(JACAMENO_READY_MAX_PROJECTION_LAG_SECONDS), on both configurations."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from eventstore import NewEvent
from jacameno.settings import Settings
from tests.integration.api.support import Api, running


@pytest.fixture
async def strict_api(api_config: Settings) -> AsyncIterator[Api]:
    async with running(dataclasses.replace(api_config, ready_max_projection_lag_seconds=0)) as api:
        yield api


async def test_metrics_export_each_projections_lag_and_failures(api: Api) -> None:
    core = api.services.core
    await core.runner.wait_for(await core.store.head_position())
    text = (await api.client.get("/metrics")).text
    for name in ("lag_events", "lag_seconds", "failures_total"):
        assert f'jacameno_projection_{name}{{projection="projects"}} 0.0' in text


async def test_readyz_ignores_the_lag_unless_told_to(api: Api) -> None:
    core = api.services.core
    await core.runner.stop()
    await core.store.append("elsewhere", [NewEvent("ignored")])
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert "projections" not in ready.json()["checks"]


async def test_readyz_is_not_ready_while_a_projection_lags_beyond_the_maximum(
    strict_api: Api,
) -> None:
    core = strict_api.services.core
    await core.runner.wait_for(await core.store.head_position())
    ready = await strict_api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["projections"]["status"] == "ok"
    await core.runner.stop()  # the read model stops following: the next event is lag
    result = await core.store.append("elsewhere", [NewEvent("ignored")])
    ready = await strict_api.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    check = ready.json()["checks"]["projections"]
    assert (check["status"], sorted(check["lagging"]), check["max_lag_seconds"]) == (
        "lagging",
        # every read model stopped following
        ["ai_jobs", "ai_results", "analytics", "assets", "catalog", "document", "projects"],
        0,
    )
    assert check["lag_seconds"]["projects"] > 0
    text = (await strict_api.client.get("/metrics")).text
    assert 'jacameno_projection_lag_events{projection="projects"} 0.0' not in text
    await core.runner.start()
    await core.runner.wait_for(result.last_position)
    assert (await strict_api.client.get("/readyz")).status_code == 200
