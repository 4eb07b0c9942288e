"""Nobody can lock an account's owner out by failing logins at it, and two tabs refreshing one
refresh token at once both stay logged in, while a late replay still revokes the session."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.accounts import PASSWORD
from harness.settings import app_settings
from jacameno.settings import Settings
from tests.integration.api.support import random_address, running


def configured(api_config: Settings, tmp_path: Path, **overrides: str) -> Settings:
    database_url = None if api_config.database_kind == "sqlite" else api_config.database_url
    return app_settings(tmp_path, database_url, api_config.redis_url, **overrides)


async def test_failed_logins_from_two_addresses_do_not_lock_the_owner_out(
    api_config: Settings, tmp_path: Path
) -> None:
    # The defaults: 10 attempts a minute per address, 5 per account from one address.
    settings = configured(api_config, tmp_path, auth_rate_limit="10", auth_account_rate_limit="5")
    victim_address = random_address()
    async with running(settings, victim_address) as victim:
        user = await victim.register("owner")
    wrong = {"email": user["email"], "password": "wrong password"}
    for _ in range(2):
        async with running(settings) as attacker:
            codes = [
                (await attacker.client.post("/api/auth/login", json=wrong)).status_code
                for _ in range(6)
            ]
            # The attacker stays limited at this account from this address.
            assert codes == [401] * 5 + [429]
    async with running(settings, victim_address) as victim:
        tokens = await victim.login(user["email"], PASSWORD)
        assert tokens["token_type"] == "bearer"


async def test_one_address_is_limited_per_account(api_config: Settings, tmp_path: Path) -> None:
    settings = configured(api_config, tmp_path, auth_rate_limit="100", auth_account_rate_limit="2")
    async with running(settings) as api:
        first = await api.register("first")
        second = await api.register("second")
        wrong = {"email": first["email"], "password": "wrong password"}
        codes = [
            (await api.client.post("/api/auth/login", json=wrong)).status_code for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        # Another account from the same address is not held back.
        await api.login(second["email"])


async def test_two_tabs_refreshing_at_once_both_stay_logged_in(api_config: Settings) -> None:
    async with running(api_config) as api:
        member = await api.member("tabs")
        token = member.tokens["refresh_token"]
        left, right = await asyncio.gather(
            *(api.client.post("/api/auth/refresh", json={"refresh_token": token}) for _ in "ab")
        )
        assert (left.status_code, right.status_code) == (200, 200)
        # Both tabs hold the same, current refresh token, and working access tokens.
        assert left.json()["refresh_token"] == right.json()["refresh_token"]
        for tab in (left, right):
            headers = {"Authorization": f"Bearer {tab.json()['access_token']}"}
            assert (await api.client.get("/api/me", headers=headers)).status_code == 200
        nxt = await api.client.post(
            "/api/auth/refresh", json={"refresh_token": left.json()["refresh_token"]}
        )
        assert nxt.status_code == 200
        # A replay of the first token, now two rotations old, still revokes the session.
        late = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert late.json()["error"]["code"] == "refresh_token_reused"
        revoked = await api.client.post(
            "/api/auth/refresh", json={"refresh_token": nxt.json()["refresh_token"]}
        )
        assert revoked.status_code == 401


async def test_a_reuse_after_the_grace_revokes_the_session(
    api_config: Settings, tmp_path: Path
) -> None:
    async with running(configured(api_config, tmp_path, refresh_grace_seconds="1")) as api:
        member = await api.member("late")
        token = member.tokens["refresh_token"]
        tokens = api.services.identity.refresh_tokens
        now = tokens.clock()
        tokens.clock = lambda: now
        rotated = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert rotated.status_code == 200
        tokens.clock = lambda: now + 1.1  # the grace (1 s) is over, with no real wait
        late = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert late.status_code == 401
        assert late.json()["error"]["code"] == "refresh_token_reused"
        revoked = await api.client.post(
            "/api/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
        )
        assert revoked.status_code == 401
