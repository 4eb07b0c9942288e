"""Running the app for API tests: the lifespan, and a small client that registers and logs in
users (through harness/accounts.py) and keeps their whole token answers."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from harness import accounts
from harness.accounts import PASSWORD, bearer, unique_email
from jacameno.app import create_app
from jacameno.bootstrap import Services
from jacameno.settings import Settings


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
        return bearer(self.tokens["access_token"])


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
        return await accounts.register(self.client, unique_email(name), password, name.title())

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        return await accounts.login(self.client, email, password)

    async def member(self, name: str = "user") -> Member:
        user = await self.register(name)
        return Member(user, user["email"], await self.login(user["email"]))

    async def project(self, owner: Member, title: str = "Song") -> dict[str, Any]:
        return await accounts.create_project(self.client, owner.headers, title)

    async def invite(self, owner: Member, project_id: str, who: Member, role: str) -> None:
        await accounts.invite(self.client, owner.headers, project_id, who.email, role)


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
