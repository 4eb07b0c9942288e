"""Commands on projects. Each decides on the read model and appends its events to the project's
stream in the project's turn (jacameno.projects.locks: commands on one project take turns across
every node, so they race neither each other nor the document edits on the same stream), then
waits until the projection has applied them, so the next request (from anyone) sees the change:
a removed member loses access at once. It also waits for this server's other followers of the
log (the collaboration rooms): when a removal returns, the member's sockets on this server are
closed; other servers follow within moments.

Rights: every member reads the project and its members; owners and editors rename; owners
delete and manage members; anyone may leave. A project always keeps an owner."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from domain import events
from domain.roles import EDITOR, OWNER
from eventstore import NO_STREAM, AppendResult, EventStore, NewEvent
from eventstore.progress import STALLED_AFTER
from jacameno import logs
from jacameno.projects.locks import ProcessTurns, Turns
from projections.projects import PROJECTS, ProjectsReadModel, ProjectState, ProjectView
from projections.runner import ProjectionRunner

COMMAND_DEADLINE = 10.0  # seconds a command waits for its project's turn before 409


class ProjectError(Exception):
    """Base of the errors of project commands."""


class ProjectNotFound(ProjectError):
    """No such project, or the caller may not know that it exists."""


class MemberNotFound(ProjectError):
    """The user is not a member of the project."""


class NotAllowed(ProjectError):
    """The caller is a member whose role does not allow this."""


class Conflict(ProjectError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


Decide = Callable[[ProjectState], list[NewEvent]]
# What a command answers from, and so waits for (read-your-writes): not every read model.
_READ_MODELS = (PROJECTS,)


class Follower(Protocol):
    async def wait_for(self, position: int, timeout: float = STALLED_AFTER) -> None:
        """Return once the log up to `position` is handled; TimeoutError once the follower is
        stuck (has not moved for `timeout` seconds) or after eventstore.progress.WAIT_LIMIT."""
        ...


def _event(kind: str, actor: str, **data: str) -> NewEvent:
    metadata = {"user_id": actor}
    request_id = logs.request_id.get()
    if request_id is not None:
        metadata["request_id"] = request_id
    return NewEvent(kind, events.encode(data), metadata)


def _require(state: ProjectState, actor: str, *roles: str) -> None:
    if state.roles.get(actor) not in roles:
        raise NotAllowed("your role does not allow this")


class Projects:
    def __init__(
        self,
        store: EventStore,
        runner: ProjectionRunner,
        reads: ProjectsReadModel,
        followers: Sequence[Follower] = (),
        turns: Turns | None = None,
    ) -> None:
        self._store = store
        self._turns = turns or ProcessTurns()
        self._runner = runner
        self.reads = reads
        self._followers = followers

    async def create(self, actor: str, title: str) -> ProjectView:
        project_id = str(uuid.uuid4())
        result = await self._store.append(
            events.stream_name(project_id),
            [
                _event(events.PROJECT_CREATED, actor, title=title),
                _event(events.MEMBER_ADDED, actor, user_id=actor, role=OWNER),
            ],
            expected_version=NO_STREAM,
        )
        await self._runner.wait_for(result.last_position, only=_READ_MODELS)
        view = await self.reads.project_for(actor, project_id)
        assert view is not None, "the projection applied the creation"
        return view

    async def get(self, actor: str, project_id: str) -> ProjectView:
        view = await self.reads.project_for(actor, project_id)
        if view is None:
            raise ProjectNotFound(project_id)
        return view

    async def rename(self, actor: str, project_id: str, title: str) -> ProjectView:
        def decide(state: ProjectState) -> list[NewEvent]:
            _require(state, actor, OWNER, EDITOR)
            if state.title == title:
                return []
            return [_event(events.PROJECT_RENAMED, actor, title=title)]

        await self._command(actor, project_id, decide)
        return await self.get(actor, project_id)

    async def delete(self, actor: str, project_id: str) -> None:
        def decide(state: ProjectState) -> list[NewEvent]:
            _require(state, actor, OWNER)
            return [_event(events.PROJECT_DELETED, actor)]

        await self._command(actor, project_id, decide)

    async def add_member(self, actor: str, project_id: str, user_id: str, role: str) -> None:
        def decide(state: ProjectState) -> list[NewEvent]:
            _require(state, actor, OWNER)
            if user_id in state.roles:
                raise Conflict("already_member", "this user is already a member")
            return [_event(events.MEMBER_ADDED, actor, user_id=user_id, role=role)]

        await self._command(actor, project_id, decide)

    async def change_role(self, actor: str, project_id: str, user_id: str, role: str) -> None:
        def decide(state: ProjectState) -> list[NewEvent]:
            _require(state, actor, OWNER)
            current = state.roles.get(user_id)
            if current is None:
                raise MemberNotFound(user_id)
            if current == role:
                return []
            if current == OWNER and state.owners() == [user_id]:
                raise Conflict("last_owner", "a project always keeps an owner")
            return [_event(events.MEMBER_ROLE_CHANGED, actor, user_id=user_id, role=role)]

        await self._command(actor, project_id, decide)

    async def remove_member(self, actor: str, project_id: str, user_id: str) -> None:
        def decide(state: ProjectState) -> list[NewEvent]:
            if user_id != actor:
                _require(state, actor, OWNER)
            if user_id not in state.roles:
                raise MemberNotFound(user_id)
            if state.owners() == [user_id]:
                raise Conflict("last_owner", "a project always keeps an owner")
            return [_event(events.MEMBER_REMOVED, actor, user_id=user_id)]

        await self._command(actor, project_id, decide)

    async def _command(self, actor: str, project_id: str, decide: Decide) -> None:
        """Decide on the read model and append, in the project's turn (jacameno.projects.locks):
        no other command appends meanwhile, so the decision still holds when its events are
        appended after whatever document edits landed since. Conflict (409) if the turn does
        not come within COMMAND_DEADLINE seconds."""
        stream = events.stream_name(project_id)
        turn = False
        try:
            async with self._turns.hold(stream, COMMAND_DEADLINE):
                turn = True
                result = await self._decide_and_append(actor, project_id, stream, decide)
        except TimeoutError as exc:
            if turn:
                raise
            raise Conflict("concurrent_update", "the project is busy; try again") from exc
        if result is None:
            return
        await self._runner.wait_for(result.last_position, only=_READ_MODELS)
        for follower in self._followers:
            await follower.wait_for(result.last_position)

    async def _decide_and_append(
        self, actor: str, project_id: str, stream: str, decide: Decide
    ) -> AppendResult | None:
        current = await self._store.stream_version(stream)
        state = await self.reads.state(project_id)
        if current > 0 and (state is None or state.version < current):
            # Events after the last one the read model applied (document edits, or a
            # membership change still being projected): decide on the state they leave.
            tail = await self._store.read_stream(stream, current, current)
            await self._runner.wait_for(tail[-1].position, only=_READ_MODELS)
            state = await self.reads.state(project_id)
        if state is None or state.deleted or actor not in state.roles:
            raise ProjectNotFound(project_id)
        new_events = decide(state)
        if not new_events:
            return None
        # Any version: only edits and session events can have landed since `current`.
        return await self._store.append(stream, new_events)
