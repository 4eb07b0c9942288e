"""Users, their tokens and their projects, made through the REST API of a running server, as a
client would: register, log in, create a project, invite members."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


class UnexpectedResponse(AssertionError):
    """The server answered with another status than the one expected (an AssertionError, so
    that pytest reports a failed expectation)."""


@dataclass(frozen=True, slots=True)
class User:
    """A registered, logged-in user: `token` is its access token."""

    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(name: str = "user") -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}@example.com"


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    """`response` if its status is one of `statuses`, else UnexpectedResponse with its body."""
    if response.status_code not in statuses:
        request = response.request
        raise UnexpectedResponse(
            f"{request.method} {request.url.path}: {response.status_code} {response.text[:500]}"
        )
    return response


async def register(
    http: httpx.AsyncClient, email: str, password: str = PASSWORD, display_name: str = "User"
) -> dict[str, Any]:
    """Register an account; the user as the API returns it."""
    body = {"email": email, "password": password, "display_name": display_name}
    user: dict[str, Any] = expect(await http.post("/api/auth/register", json=body), 201).json()
    return dict(user["user"])


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in; the tokens as the API returns them (`access_token`, `refresh_token`, ...)."""
    body = {"email": email, "password": password}
    tokens: dict[str, Any] = expect(await http.post("/api/auth/login", json=body), 200).json()
    return tokens


async def new_user(http: httpx.AsyncClient, name: str = "user") -> User:
    """Register a new user called `name` (with an email of its own) and log it in."""
    email = unique_email(name)
    user = await register(http, email, display_name=name.title())
    tokens = await login(http, email)
    return User(str(user["id"]), email, str(tokens["access_token"]))


async def create_project(
    http: httpx.AsyncClient, headers: Mapping[str, str], title: str = "Song"
) -> dict[str, Any]:
    """Create a project as the user of `headers`; the project as the API returns it."""
    created = await http.post("/api/projects", json={"title": title}, headers=dict(headers))
    project: dict[str, Any] = expect(created, 201).json()
    return project


async def invite(
    http: httpx.AsyncClient, headers: Mapping[str, str], project_id: str, email: str, role: str
) -> None:
    """Make the user of `email` a member of the project with `role`, as the user of `headers`
    (an owner)."""
    response = await http.post(
        f"/api/projects/{project_id}/members",
        json={"email": email, "role": role},
        headers=dict(headers),
    )
    expect(response, 201)


async def new_project(
    http: httpx.AsyncClient, owner: User, *members: tuple[User, str], title: str = "Song"
) -> str:
    """A new project owned by `owner`, with `members` as (user, role); its id."""
    project_id = str((await create_project(http, owner.headers, title))["id"])
    for member, role in members:
        await invite(http, owner.headers, project_id, member.email, role)
    return project_id
