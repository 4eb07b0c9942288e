"""Running the app for API tests: settings for each configuration, the lifespan, and a small
client that registers and logs in users."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from jacameno.app import create_app
from jacameno.bootstrap import Services
from jacameno.settings import Settings

PASSWORD = "correct horse battery staple"


def api_settings(
    tmp_path: Path, database_url: str | None, redis_url: str | None, **overrides: str
) -> Settings:
    environ = {
        "JACAMENO_ENV": "test",
        "JACAMENO_DATA_DIR": str(tmp_path / "data"),
        "JACAMENO_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'api.db'}",
        "JACAMENO_JWT_SECRET": "test-secret-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "JACAMENO_AUTO_MIGRATE": "true" if database_url is None else "false",
        "JACAMENO_ARGON2_TIME_COST": "1",
        "JACAMENO_ARGON2_MEMORY_KIB": "1024",
        "JACAMENO_ARGON2_PARALLELISM": "1",
        "JACAMENO_AUTH_RATE_LIMIT": "10000",
        "JACAMENO_AUTH_ACCOUNT_RATE_LIMIT": "10000",
        "JACAMENO_API_RATE_LIMIT": "100000",
    }
    if redis_url is not None:
        environ["JACAMENO_REDIS_URL"] = redis_url
    environ.update({f"JACAMENO_{k.upper()}": v for k, v in overrides.items()})
    return Settings.from_env(environ)


def unique_email(name: str = "user") -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Member:
    """A logged-in user."""

    user: dict[str, Any]
    email: str
    tokens: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


@dataclass
class Api:
    app: Starlette
    client: httpx.AsyncClient
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def register(self, name: str = "user", password: str = PASSWORD) -> dict[str, Any]:
        email = unique_email(name)
        response = await self.client.post(
            "/api/auth/register",
            json={"email": email, "password": password, "display_name": name.title()},
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()["user"]
        return user

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def member(self, name: str = "user") -> Member:
        user = await self.register(name)
        return Member(user, user["email"], await self.login(user["email"]))

    async def project(self, owner: Member, title: str = "Song") -> dict[str, Any]:
        response = await self.client.post(
            "/api/projects", json={"title": title}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        project: dict[str, Any] = response.json()
        return project

    async def invite(self, owner: Member, project_id: str, who: Member, role: str) -> None:
        response = await self.client.post(
            f"/api/projects/{project_id}/members",
            json={"email": who.email, "role": role},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text


def random_address() -> str:
    """A client address of its own per test, so that per-address limits in a shared Redis do
    not carry over between tests."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@contextlib.asynccontextmanager
async def running(settings: Settings, address: str | None = None) -> AsyncIterator[Api]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(address or random_address(), 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield Api(app, client, settings)
