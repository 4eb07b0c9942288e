"""Rate limits of registration and of the API per user, and CORS, on both configurations."""

from __future__ import annotations

from pathlib import Path

from harness.accounts import PASSWORD, unique_email
from harness.settings import app_settings
from jacameno.settings import Settings
from tests.integration.api.catalog_support import asset, publish, settled
from tests.integration.api.support import running


def limited(api_config: Settings, tmp_path: Path, **overrides: str) -> Settings:
    database_url = None if api_config.database_kind == "sqlite" else api_config.database_url
    return app_settings(tmp_path, database_url, api_config.redis_url, **overrides)


async def test_register_is_rate_limited_per_address(api_config: Settings, tmp_path: Path) -> None:
    async with running(limited(api_config, tmp_path, auth_rate_limit="2")) as api:
        codes = [
            (
                await api.client.post(
                    "/api/auth/register",
                    json={"email": unique_email(), "password": PASSWORD, "display_name": "R"},
                )
            ).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 429]


async def test_the_api_is_rate_limited_per_user(api_config: Settings, tmp_path: Path) -> None:
    async with running(limited(api_config, tmp_path, api_rate_limit="5")) as api:
        busy = await api.member("busy")
        calm = await api.member("calm")
        codes = [
            (await api.client.get("/api/projects", headers=busy.headers)).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        refused = await api.client.get("/api/projects", headers=busy.headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        # another user of the same address is not held back by the busy one
        assert (await api.client.get("/api/projects", headers=calm.headers)).status_code == 200


async def test_an_anonymous_batch_of_plays_counts_each_play_against_the_address(
    api_config: Settings, tmp_path: Path
) -> None:
    async with running(limited(api_config, tmp_path, api_rate_limit="8")) as api:
        owner = await api.member("owner")
        project = await api.project(owner)
        track_id = (
            await publish(api, owner, project["id"], await asset(api, project["id"], owner))
        )["id"]

        def batch(n: int, first: int) -> dict[str, object]:
            devices = [f"device-{first + i:04}" for i in range(n)]
            return {"plays": [{"track_id": track_id, "device_id": d} for d in devices]}

        assert (await api.client.post("/api/plays", json=batch(6, 0))).status_code == 202
        refused = await api.client.post("/api/plays", json=batch(3, 6))  # 9 of 8
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        single = await api.client.post(
            f"/api/tracks/{track_id}/plays", json={"device_id": "device-0100"}
        )
        assert single.status_code == 429
        await settled(api)
        # (read as the owner: the address has used its anonymous requests)
        counted = await api.client.get(f"/api/tracks/{track_id}", headers=owner.headers)
        assert counted.json()["plays"] == 6  # the refused plays are not recorded


async def test_cors_answers_configured_origins_only(api_config: Settings, tmp_path: Path) -> None:
    settings = limited(api_config, tmp_path, cors_origins="https://studio.example")
    async with running(settings) as api:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await api.client.options(
            "/api/projects", headers={"Origin": "https://studio.example", **preflight}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://studio.example"
        other = await api.client.options(
            "/api/projects", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
        simple = await api.client.get("/healthz", headers={"Origin": "https://studio.example"})
        assert simple.headers["access-control-allow-origin"] == "https://studio.example"
