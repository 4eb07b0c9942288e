"""Who may join a project's room, and with which role: the seam between collaboration and the
accounts API (access tokens, project membership)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from domain.roles import Role, can_write, parse_role
from jacameno.bearer import Authenticator, Bearer, NotAuthenticated, Users
from jacameno.coalesce import forget_outcome
from jacameno.collab.errors import Forbidden, NoSuchProject, Unauthenticated
from projections.projects import ProjectsReadModel, ProjectState


@dataclass(frozen=True, slots=True)
class Access:
    user_id: str
    role: Role
    # The project stream's version the decision reflects (the read model's): a membership change
    # at a later version revises it (jacameno.collab.membership), an earlier one does not.
    version: int
    # When the token it was decided on expires (seconds since the epoch): the socket is revoked
    # with 4401 then (jacameno.collab.rooms). None: never.
    expires_at: float | None = None
    # How many membership changes this node's rooms had applied when the decision began
    # (Rooms.admit): none since, and a join need not read the access again. None: unknown.
    changes_seen: int | None = None

    @property
    def can_write(self) -> bool:
        return can_write(self.role)


class Gatekeeper(Protocol):
    async def admit(
        self, project_id: str, token: str | None, vouched: Callable[[], None] | None = None
    ) -> Access:
        """The access `token` gives to project `project_id`. Raises Unauthenticated (no, bad or
        expired token; deleted user), NoSuchProject (no such project, or deleted), Forbidden
        (not a member); a backing store's unavailability passes through as its own error.
        `vouched` is called at most once, when the token's signature holds and the project id
        is well-formed, before any database is asked: what the caller would only do once
        admitted may begin then (the room's load), to be undone if the admission fails."""
        ...

    async def recheck(self, project_id: str, access: Access) -> Access:
        """`access` as the read model has it now (the token is not checked again, its expiry is
        kept): the member's current role and version. Raises Unauthenticated (the user was
        deleted), NoSuchProject or Forbidden like `admit`."""
        ...

    def changed(self, project_id: str | None) -> None:
        """The read model has a membership change of `project_id` (None: of every project, a
        deleted user): whatever is decided from now on must reflect it."""
        ...


def canonical_project_id(project_id: str) -> str | None:
    """Project ids are canonical UUIDs; anything else names no project."""
    try:
        value = uuid.UUID(project_id)
    except ValueError:
        return None
    return project_id if str(value) == project_id else None


class MembershipGatekeeper:
    """Checks the access token with the REST API's own check (jacameno.bearer: a deleted
    user's tokens are refused there too) and the user's role in the projects read model. Once
    the token's signature holds, its user and the project's members are read at the same time
    (neither decides anything before both are known: a bad token is refused as such whatever
    the project)."""

    def __init__(
        self, authenticator: Authenticator, accounts: Users, projects: ProjectsReadModel
    ) -> None:
        self._authenticator = authenticator
        self._accounts = accounts
        self._projects = projects
        # One read of a project's members shared by the sockets that ask while it is under way
        # (50 joiners opening a project at once: one read, not 50); `changed` ends the sharing
        # of a read that may predate a change.
        self._reading: dict[str, asyncio.Future[ProjectState | None]] = {}

    def changed(self, project_id: str | None) -> None:
        if project_id is None:
            self._reading.clear()
        else:
            self._reading.pop(project_id, None)

    async def _state(self, project_id: str) -> ProjectState | None:
        shared = self._reading.get(project_id)
        if shared is None:
            shared = asyncio.ensure_future(self._projects.state(project_id))
            self._reading[project_id] = shared
            shared.add_done_callback(lambda done: self._read(project_id, done))
        # Shielded: a caller that gives up (its admission timed out) leaves the read to others.
        return await asyncio.shield(shared)

    def _read(self, project_id: str, done: asyncio.Future[ProjectState | None]) -> None:
        if self._reading.get(project_id) is done:
            del self._reading[project_id]
        if not done.cancelled():
            done.exception()  # retrieved: each caller that waited got it already

    async def admit(
        self, project_id: str, token: str | None, vouched: Callable[[], None] | None = None
    ) -> Access:
        if not token:
            raise Unauthenticated("an access token is required")
        authenticator = self._authenticator
        try:
            claims = authenticator.verify(token)
        except NotAuthenticated as exc:
            raise Unauthenticated(str(exc)) from exc
        if canonical_project_id(project_id) is None:
            await self._bearer(authenticator.bearer(claims))  # a bad token is told so first
            raise NoSuchProject("no such project")
        if vouched is not None:
            vouched()
        reading = asyncio.ensure_future(self._state(project_id))
        try:
            bearer = await self._bearer(authenticator.bearer(claims))
        except BaseException:
            reading.cancel()  # the shared read goes on for the others (`_state` shields it)
            reading.add_done_callback(forget_outcome)
            raise
        access = self._decide(await reading, bearer.user.id)
        return replace(access, expires_at=float(bearer.expires_at))

    @staticmethod
    async def _bearer(reading: Awaitable[Bearer]) -> Bearer:
        try:
            return await reading
        except NotAuthenticated as exc:
            raise Unauthenticated(str(exc)) from exc

    async def recheck(self, project_id: str, access: Access) -> Access:
        if await self._accounts.get(access.user_id) is None:
            raise Unauthenticated("the account was deleted")
        return replace(await self._access(project_id, access.user_id), expires_at=access.expires_at)

    async def _access(self, project_id: str, user_id: str) -> Access:
        return self._decide(await self._state(project_id), user_id)

    @staticmethod
    def _decide(state: ProjectState | None, user_id: str) -> Access:
        if state is None or state.deleted:
            raise NoSuchProject("no such project")
        role = parse_role(state.roles.get(user_id, ""))
        if role is None:
            raise Forbidden("not a member of this project")
        return Access(user_id, role, state.version)
