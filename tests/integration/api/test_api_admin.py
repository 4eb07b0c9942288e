"""The admin API on both configurations: only the accounts of JACAMENO_ADMIN_EMAILS may read the
projections' status or rebuild a read model, and a rebuild started over HTTP swaps in a model
equal to the live one while the API keeps answering from it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from harness import accounts
from harness.accounts import PASSWORD
from harness.waiting import wait_until
from jacameno.settings import Settings
from tests.integration.api.support import Api, Member, running

ADMIN = "admin@example.com"


@pytest.fixture
async def admin_api(api_config: Settings) -> AsyncIterator[Api]:
    settings = dataclasses.replace(api_config, admin_emails=frozenset({ADMIN}))
    async with running(settings) as api:
        yield api


async def administrator(api: Api) -> Member:
    user = await accounts.register(api.client, ADMIN, PASSWORD, "Admin")
    return Member(user, ADMIN, await api.login(ADMIN))


async def test_only_administrators_see_the_projections_and_rebuild_them(admin_api: Api) -> None:
    api = admin_api
    admin = await administrator(api)
    user = await api.member("user")
    for headers in (user.headers, {}):
        listed = await api.client.get("/api/admin/projections", headers=headers)
        assert listed.status_code == (403 if headers else 401)
        started = await api.client.post("/api/admin/projections/projects/rebuild", headers=headers)
        assert started.status_code == (403 if headers else 401)
    unknown = await api.client.post("/api/admin/projections/nope/rebuild", headers=admin.headers)
    assert unknown.status_code == 404
    listed = await api.client.get("/api/admin/projections", headers=admin.headers)
    assert listed.status_code == 200
    names = [p["name"] for p in listed.json()["projections"]]
    assert names == [
        "projects",
        "document",
        "analytics",
        "assets",
        "ai_jobs",
        "catalog",
        "ai_results",
    ]


async def test_a_rebuild_over_http_swaps_in_an_equal_model_while_the_api_answers(
    admin_api: Api,
) -> None:
    api = admin_api
    admin = await administrator(api)
    for i in range(5):
        created = await api.client.post(
            "/api/projects", json={"title": f"song {i}"}, headers=admin.headers
        )
        assert created.status_code == 201, created.text
    before = (await api.client.get("/api/projects", headers=admin.headers)).json()
    await api.services.core.db.execute("UPDATE projects SET title = 'damaged'")
    started = await api.client.post(
        "/api/admin/projections/projects/rebuild", headers=admin.headers
    )
    assert started.status_code == 202, started.text
    assert started.json() == {"projection": "projects", "state": "rebuilding"}
    again = await api.client.post("/api/admin/projections/projects/rebuild", headers=admin.headers)
    assert again.status_code in (202, 409)  # 409 while the first still runs

    async def rebuilt() -> bool:
        page = (await api.client.get("/api/projects", headers=admin.headers)).json()
        assert len(page["projects"]) == 5  # never empty or partial meanwhile
        return bool(page == before)

    await wait_until(rebuilt, "the rebuilt model is swapped in")
