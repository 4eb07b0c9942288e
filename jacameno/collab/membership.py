"""Membership changes reach sockets that are already open.

Every node follows the log (`MembershipFollower`) and hands each `member.removed`,
`member.role_changed`, `project.deleted` and `user.deleted` to its rooms
(`Rooms.apply_membership`): a removed member's peers are revoked (4403), every peer of a deleted
project too (4404), every peer of a deleted user in every project (4401), a changed role takes
effect on the peer's next message. Following the log, not a bus, is what makes it work
with several nodes on one database, and what lets a node that was down catch up.

A change is handed over only once the projects read model has applied it (`settled`): an
admission decided on an older read model is then either already in a room (and revised there)
or still being let in, and `Rooms.attach` checks it again (see there)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from domain import events
from domain.roles import Role, parse_role
from eventstore import EventStore, RecordedEvent, StoreClosedError
from eventstore.progress import STALLED_AFTER, WAIT_LIMIT, Progress
from jacameno.collab.errors import AdmissionError, Forbidden, NoSuchProject, Unauthenticated
from jacameno.collab.gatekeeper import Access

logger = logging.getLogger(__name__)

EVENT_TYPES = frozenset(
    {events.MEMBER_REMOVED, events.MEMBER_ROLE_CHANGED, events.PROJECT_DELETED, events.USER_DELETED}
)


@dataclass(frozen=True, slots=True)
class MembershipChange:
    project_id: str | None  # None: every project (the user was deleted)
    version: int  # the event's version in the project's stream
    user_id: str | None  # None: the whole project (deleted)
    role: Role | None  # the new role; None: no access any more

    @classmethod
    def from_event(cls, event: RecordedEvent) -> MembershipChange:
        """The change an event of `EVENT_TYPES` makes. A role this server does not know gives
        no access."""
        if event.type == events.USER_DELETED:
            return cls(None, event.version, events.user_of(event.stream), None)
        project_id = events.project_of(event.stream)
        if event.type == events.PROJECT_DELETED:
            return cls(project_id, event.version, None, None)
        data = json.loads(event.data)
        changed = event.type == events.MEMBER_ROLE_CHANGED
        role = parse_role(data.get("role")) if changed else None
        return cls(project_id, event.version, str(data["user_id"]), role)

    def revise(self, access: Access) -> Access | AdmissionError | None:
        """What this change makes of `access`: None if it does not concern it (another user, or
        an access decided on this version or a later one), the new access, or the error that
        revokes it."""
        if self.project_id is None:
            if self.user_id == access.user_id:
                return Unauthenticated("the account was deleted")
            return None
        if access.version >= self.version:
            return None
        if self.user_id is None:
            return NoSuchProject("the project was deleted")
        if self.user_id != access.user_id:
            return None
        if self.role is None:
            return Forbidden("no longer a member of this project")
        return replace(access, role=self.role, version=self.version)


class MembershipFollower:
    """Follows the log after `after_position` and calls `apply` with every membership change,
    in log order, once `settled(position)` has returned. Reads are spaced at least `interval`
    seconds apart while the log is busy (most of it is document edits; one read then covers
    many commits), unless someone `wait_for`s a position. Failures are logged and retried from
    the last position handled, with backoff; a closed store ends it."""

    def __init__(
        self,
        store: EventStore,
        apply: Callable[[MembershipChange], None],
        after_position: int,
        *,
        settled: Callable[[int], Awaitable[None]],
        interval: float,
        batch_size: int = 1000,
        max_backoff: float = 5.0,
    ) -> None:
        self._progress = Progress(after_position, interval)
        self._store = store
        self._apply = apply
        self._settled = settled
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="collab-membership")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The following task, while started and not stopped."""
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # unlike suppressing CancelledError, keeps our own
            if not task.cancelled():
                task.result()  # it ended before the cancellation landed: its error, if any

    @property
    def position(self) -> int:
        """The last position handled."""
        return self._progress.position

    async def wait_for(self, position: int, timeout: float = STALLED_AFTER) -> None:
        """Return once every change up to `position` was applied; TimeoutError once the
        follower has not moved for `timeout` seconds, or after WAIT_LIMIT in all (as the
        projection runner's `wait_for`)."""
        async with asyncio.timeout(max(WAIT_LIMIT, timeout)):
            await self._progress.wait_for(position, stalled_after=timeout)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._follow()
            except StoreClosedError:
                logger.info("store closed", extra={"action": "collab.membership_stopped"})
                return
            except Exception:
                logger.exception(
                    "following membership changes failed; retrying",
                    extra={"action": "collab.membership_retry", "position": self.position},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _follow(self) -> None:
        # The subscription itself retries while the store is unavailable.
        subscription = self._store.subscribe(self.position, batch_size=self._batch_size)
        while True:
            batch = await subscription.next_batch()
            for event in batch:
                if event.type in EVENT_TYPES:
                    await self._settled(event.position)
                    self._apply(MembershipChange.from_event(event))
            await self._progress.advance(batch[-1].position)
            if len(batch) < self._batch_size:
                await self._progress.rest()
