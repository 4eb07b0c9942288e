"""Who may join a project's room, and with which role: the seam between collaboration and the
accounts API (access tokens, project membership)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from dbdrivers.shared import Shared
from domain.roles import Role, can_write, parse_role
from jacameno.bearer import Authenticator, Bearer, NotAuthenticated, Users
from jacameno.collab.errors import Forbidden, NoSuchProject, Unauthenticated
from jacameno.recent import Recent
from projections.projects import ProjectsReadModel, ProjectState

# Seconds a read of a user or of a project's members lets joins in without another read
# (MembershipGatekeeper): changes that take access away are applied as they come; this bounds
# how long a node whose membership follower stalled may admit on an older read.
TRUSTED_FOR = 10.0
REMEMBERED = 10_000  # users, and projects, whose reads are kept at most


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
    the token's signature holds, the project's members are read, and with them which of them
    still have an account (`ProjectState.accounts`): a member whose account that read found is
    let in on it alone, so a join reads nothing but its project's members, one read shared by a
    burst of joiners. Anyone else's user is read too before anything is decided (a bad token is
    refused as such whatever the project); so is the user where the read model's state does
    not say (`accounts` None), or where the members' read is one trusted from earlier (below),
    unless the user was found lately. A shared read may have begun a moment before the join
    asked: a user deleted in that moment is revoked with their other sockets when the node's
    membership follower applies `user.deleted`, as a member removed in it is.

    What those reads found is trusted for `trusted_for` seconds to let the same user, or
    another member of the same project, in without reading again: a join then waits for no
    database, which in a burst of joiners is most of what a join waits for (each read is
    several turns of an event loop that the burst keeps busy). It only ever lets in: a refusal
    (no such user, project or membership, a deleted project) is always decided on a fresh
    read, so a member added a moment ago is let in at once. Every change that takes access away
    (`changed`, from the node's membership follower, which revokes the sockets already open at
    the same moment) forgets what it concerns, and a read that may predate a change is not
    kept; `trusted_for` bounds how long a node whose follower has stalled may go on admitting
    on what it read before. `recheck` always reads."""

    def __init__(
        self,
        authenticator: Authenticator,
        accounts: Users,
        projects: ProjectsReadModel,
        *,
        trusted_for: float = TRUSTED_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticator = authenticator
        self._accounts = accounts
        self._projects = projects
        self._clock = clock
        # One read of a project's members shared by the sockets that ask while it is under way
        # (50 joiners opening a project at once: one read, not 50); `changed` ends the sharing
        # of a read that may predate a change.
        self._reading: dict[str, Shared[ProjectState | None]] = {}
        self._states: Recent[ProjectState] = Recent(trusted_for, REMEMBERED)
        self._users: Recent[bool] = Recent(trusted_for, REMEMBERED)  # users found
        self._changes = 0  # `changed` calls so far: a read begun before one is not kept
        self._deletions = 0  # of them, users deleted: a read begun before one finds no account

    def changed(self, project_id: str | None) -> None:
        self._changes += 1
        if project_id is None:
            self._deletions += 1
            self._reading.clear()
            self._states.clear()
            self._users.clear()
        else:
            self._reading.pop(project_id, None)
            self._states.drop(project_id)

    def _shared_state(self, project_id: str) -> Shared[ProjectState | None]:
        """The read of the project's members under way, else a new one."""
        shared = self._reading.get(project_id)
        if shared is None:
            read = self._read(project_id, self._clock(), self._changes)
            shared = self._reading[project_id] = Shared(read, name="members-read")
        return shared

    async def _state(self, project_id: str) -> ProjectState | None:
        # A caller that gives up (its admission timed out) leaves the read to others.
        return await self._shared_state(project_id).wait()

    async def _read(self, project_id: str, began: float, changes: int) -> ProjectState | None:
        """The project's members, kept if no change came while they were read. Its callers learn
        them in the turn it ends, once it is no longer shared and what it found is kept."""
        try:
            state = await self._projects.state(project_id)
        finally:
            reading = self._reading.get(project_id)
            if reading is not None and reading.task is asyncio.current_task():
                del self._reading[project_id]
        if state is not None and not state.deleted and changes == self._changes:
            self._states.put(project_id, state, began)
        return state

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
        now = self._clock()
        user_id = claims.user_id
        state = self._states.get(project_id, now)
        found = False  # the account, by a read under way when this admission asked
        if not _lets_in(state, user_id):  # a refusal is decided on a fresh read
            deletions = self._deletions
            state = await self._state(project_id)
            found = _has_account(state, user_id) and deletions == self._deletions
        if not found and self._users.get(user_id, now) is None:
            changes = self._changes
            await self._bearer(authenticator.bearer(claims))
            found = changes == self._changes
        if found:  # lately: not deleted since (or the membership follower would have said)
            self._users.put(user_id, True, now)
        return replace(self._decide(state, user_id), expires_at=float(claims.expires_at))

    @staticmethod
    async def _bearer(reading: Awaitable[Bearer]) -> Bearer:
        try:
            return await reading
        except NotAuthenticated as exc:
            raise Unauthenticated(str(exc)) from exc

    async def recheck(self, project_id: str, access: Access) -> Access:
        user_id, deletions = access.user_id, self._deletions
        state = await self._state(project_id)
        found = _has_account(state, user_id) and deletions == self._deletions
        if not found and await self._accounts.get(user_id) is None:
            raise Unauthenticated("the account was deleted")
        return replace(self._decide(state, user_id), expires_at=access.expires_at)

    @staticmethod
    def _decide(state: ProjectState | None, user_id: str) -> Access:
        if state is None or state.deleted:
            raise NoSuchProject("no such project")
        role = parse_role(state.roles.get(user_id, ""))
        if role is None:
            raise Forbidden("not a member of this project")
        return Access(user_id, role, state.version)


def _lets_in(state: ProjectState | None, user_id: str) -> bool:
    """Whether `state` makes `user_id` a member of a live project."""
    return (
        state is not None
        and not state.deleted
        and parse_role(state.roles.get(user_id, "")) is not None
    )


def _has_account(state: ProjectState | None, user_id: str) -> bool:
    """Whether the read that gave `state` found `user_id` a member with an account."""
    return state is not None and state.accounts is not None and user_id in state.accounts
