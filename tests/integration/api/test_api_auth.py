"""Accounts and authentication: register, login, rotating refresh tokens, logout, /api/me, and
the token attacks that must fail."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest

from harness.accounts import PASSWORD, unique_email
from harness.settings import app_settings
from jacameno.auth.tokens import ALGORITHM, AUDIENCE, ISSUER
from jacameno.settings import Settings, signing_key
from tests.integration.api.support import Api, running


async def test_register_returns_the_account_and_refuses_a_taken_email(api: Api) -> None:
    email = unique_email("ana")
    body = {"email": email, "password": PASSWORD, "display_name": "Ana"}
    first = await api.client.post("/api/auth/register", json=body)
    assert first.status_code == 201
    assert first.json()["user"]["email"] == email
    assert "password" not in first.text
    again = await api.client.post("/api/auth/register", json={**body, "email": email.upper()})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD, "display_name": "X"},
        {"email": "x@example.com", "password": "short", "display_name": "X"},
        {"email": "x@example.com", "password": PASSWORD},
        {"email": "x@example.com", "password": PASSWORD, "display_name": "X", "admin": True},
    ],
)
async def test_register_refuses_bad_input_with_422(api: Api, body: dict[str, object]) -> None:
    response = await api.client.post("/api/auth/register", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert PASSWORD not in response.text


async def test_bad_json_is_400_and_an_oversized_body_is_413(api: Api) -> None:
    bad = await api.client.post("/api/auth/login", content=b"{nope")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_json"
    huge = await api.client.post("/api/auth/login", content=b"x" * (2 * 1024 * 1024))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"


async def test_login_gives_tokens_and_wrong_passwords_get_401(api: Api) -> None:
    user = await api.register("bo")
    tokens = await api.login(user["email"])
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == api.settings.access_token_seconds
    me = await api.client.get(
        "/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["id"] == user["id"]
    for email, password in ((user["email"], "wrong password"), (unique_email(), PASSWORD)):
        response = await api.client.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(api: Api) -> None:
    member = await api.member("cy")
    first = member.tokens["refresh_token"]
    rotated = await api.client.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    third = (await api.client.post("/api/auth/refresh", json={"refresh_token": second})).json()
    # Two rotations back is a replay, whatever the grace for the token rotated away last.
    reused = await api.client.post("/api/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "refresh_token_reused"
    for token in (second, third["refresh_token"]):
        revoked = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert revoked.status_code == 401


async def test_forged_refresh_tokens_are_refused(api: Api) -> None:
    member = await api.member("di")
    session, generation, _ = member.tokens["refresh_token"].split(".")
    for token in (f"{session}.{int(generation) + 1}.AAAA", "garbage", f"{session}.0"):
        response = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401
    still = await api.client.post(
        "/api/auth/refresh", json={"refresh_token": member.tokens["refresh_token"]}
    )
    assert still.status_code == 200


async def test_logout_revokes_the_session(api: Api) -> None:
    member = await api.member("ed")
    token = member.tokens["refresh_token"]
    out = await api.client.post("/api/auth/logout", json={"refresh_token": token})
    assert out.status_code == 204
    after = await api.client.post("/api/auth/refresh", json={"refresh_token": token})
    assert after.status_code == 401


async def test_me_can_be_read_and_changed(api: Api) -> None:
    member = await api.member("fa")
    changed = await api.client.patch(
        "/api/me",
        json={
            "display_name": "Fa Mi",
            "avatar_url": "https://cdn.example.com/fa.png",
            "preferences": {"theme": "dark", "metronome": True},
        },
        headers=member.headers,
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["display_name"] == "Fa Mi"
    assert body["avatar_url"] == "https://cdn.example.com/fa.png"
    assert body["preferences"] == {"theme": "dark", "metronome": True}
    cleared = await api.client.patch("/api/me", json={"avatar_url": None}, headers=member.headers)
    assert cleared.json()["avatar_url"] is None
    assert cleared.json()["display_name"] == "Fa Mi"
    bad = await api.client.patch(
        "/api/me", json={"avatar_url": "javascript:alert(1)"}, headers=member.headers
    )
    assert bad.status_code == 422


def _forge(claims: dict[str, object], key: str, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_expired_and_tampered_access_tokens_are_refused(api: Api) -> None:
    member = await api.member("gi")
    secret = signing_key(api.settings)
    now = int(time.time())
    good = {"iss": ISSUER, "aud": AUDIENCE, "sub": member.id, "iat": now, "exp": now + 60}
    header, _payload, signature = member.tokens["access_token"].split(".")
    other_payload = base64.urlsafe_b64encode(
        json.dumps({**good, "sub": "someone-else"}).encode()
    ).decode()
    tokens = {
        "alg none": _unsigned(good),
        "wrong key": _forge(good, "another-secret-that-is-long-enough"),
        "expired": _forge({**good, "iat": now - 7200, "exp": now - 3600}, secret),
        "wrong audience": _forge({**good, "aud": "someone"}, secret),
        "wrong issuer": _forge({**good, "iss": "someone"}, secret),
        "no subject": _forge({k: v for k, v in good.items() if k != "sub"}, secret),
        "no expiry": _forge({k: v for k, v in good.items() if k != "exp"}, secret),
        "HS512": _forge(good, secret, "HS512"),
        "tampered": f"{header}.{other_payload.rstrip('=')}.{signature}",
        "unknown user": _forge({**good, "sub": "00000000-0000-4000-8000-000000000000"}, secret),
    }
    assert (await api.client.get("/api/me", headers=member.headers)).status_code == 200
    for name, token in tokens.items():
        response = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthorized"
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        assert (await api.client.get("/api/me", headers=headers)).status_code == 401


async def test_the_tokens_of_a_deleted_user_are_refused(api: Api) -> None:
    member = await api.member("ha")
    await api.services.identity.accounts.delete(member.id)
    me = await api.client.get("/api/me", headers=member.headers)
    assert me.status_code == 401
    refresh = await api.client.post(
        "/api/auth/refresh", json={"refresh_token": member.tokens["refresh_token"]}
    )
    assert refresh.status_code == 401


async def test_login_is_rate_limited_per_address(api_config: Settings, tmp_path: Path) -> None:
    settings = app_settings(
        tmp_path,
        None if api_config.database_kind == "sqlite" else api_config.database_url,
        api_config.redis_url,
        auth_rate_limit="3",
        auth_account_rate_limit="100",
    )
    async with running(settings) as api:
        user = await api.register("io")
        attempts = [
            await api.client.post(
                "/api/auth/login", json={"email": email, "password": "wrong password"}
            )
            for email in (user["email"], unique_email(), unique_email(), user["email"])
        ]
        assert [r.status_code for r in attempts] == [401, 401, 429, 429]
        assert int(attempts[-1].headers["retry-after"]) >= 1
        assert attempts[-1].json()["error"]["code"] == "rate_limited"
