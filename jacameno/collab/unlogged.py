"""Updates a room broadcast early but could not log, kept by the node to log them itself.

In on-receipt mode (`JACAMENO_COLLAB_BROADCAST`) the room's other sockets may hold an update
whose append then failed. Its sender was never acknowledged and resends it, and the others
bring it back too when they reconnect; but whichever client brings it back first would be
logged as its author, and a client that never comes back takes the edit with it. So a failed
room leaves its early-broadcast updates here (`Held`), each with its own `doc.updated` event
(its author's user and connection, as the server saw them: nothing a client says can move an
edit to another author), and the rooms log them again (`Relogger`) when the project's room next
loads on this node: at once when a client reconnects, else on a retry with backoff, for at most
`relog_seconds`. An update the log holds by then (an append that committed but reported a
failure, or a client that was quicker) changes nothing and is not logged twice.

What this cannot cover is the node dying: what it held dies with it, and the clients that hold
the edit bring it back; the node's ledger of what it sent early (jacameno.collab.ledger) then
names its author (docs/collaboration.md, "Broadcast modes")."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from eventstore import NewEvent

logger = logging.getLogger(__name__)

RETRY_FIRST = 0.25  # seconds before the first retry; doubled up to RETRY_MAX
RETRY_MAX = 5.0


@dataclass(frozen=True, slots=True)
class Unlogged:
    """One update to log again: its `doc.updated` event as the failed room built it."""

    event: NewEvent
    update: bytes

    def relogged(self) -> NewEvent:
        """The event to append: the author's, marked as logged again by the node."""
        metadata = {**self.event.metadata, "relogged": True}
        return NewEvent(self.event.type, self.event.data, metadata)


@dataclass(slots=True)
class _Project:
    until: float  # monotonic deadline
    writes: list[Unlogged] = field(default_factory=list)
    size: int = 0


class Held:
    """Per project, the updates failed rooms left to log, for `seconds` and at most `max_bytes`
    (a document's worth: beyond it the oldest are dropped, with a warning)."""

    def __init__(
        self, seconds: float, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._max_bytes = max_bytes
        self._clock = clock
        self._projects: dict[str, _Project] = {}
        # When each project's updates were first held: updates taken to be logged again and
        # held again (the log failed again) keep their first deadline, so a retry never
        # renews it.
        self._deadlines: dict[str, float] = {}

    def hold(self, project_id: str, writes: Sequence[Unlogged]) -> None:
        now = self._clock()
        for gone in [p for p, until in self._deadlines.items() if until < now]:
            del self._deadlines[gone]
        until = self._deadlines.setdefault(project_id, now + self._seconds)
        held = self._projects.get(project_id)
        if held is None:
            held = self._projects[project_id] = _Project(until)
        held.writes.extend(writes)
        held.size += sum(len(w.update) for w in writes)
        dropped = 0
        while held.size > self._max_bytes and held.writes:
            held.size -= len(held.writes.pop(0).update)
            dropped += 1
        if dropped:
            _warn(project_id, dropped, "more than a document's worth of unlogged updates")

    def take(self, project_id: str) -> list[Unlogged]:
        """The updates held for `project_id` (now no longer held), oldest first."""
        held = self._projects.pop(project_id, None)
        if held is None:
            return []
        if held.until < self._clock():
            _warn(project_id, len(held.writes), "held longer than relog_seconds")
            return []
        return held.writes

    def holds(self, project_id: str) -> bool:
        held = self._projects.get(project_id)
        if held is not None and held.until < self._clock():
            self.take(project_id)  # expired: warned and dropped
            return False
        return held is not None

    def drop_all(self) -> None:
        """At shutdown: whatever is still held is lost to this node (its clients resend it)."""
        for project_id, held in self._projects.items():
            _warn(project_id, len(held.writes), "the server shut down")
        self._projects.clear()


class Relogger:
    """One retry task per project that has updates held: it opens the project's room (whose
    load logs them) until none are held, backing off while the log cannot be written."""

    def __init__(self, held: Held, attempt: Callable[[str], Awaitable[None]]) -> None:
        self._held = held
        self._attempt = attempt  # open the room, wait for its relogged updates' commits
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def retry(self, project_id: str) -> None:
        if project_id not in self._tasks:
            task = asyncio.create_task(self._run(project_id), name=f"relog-{project_id}")
            self._tasks[project_id] = task

    async def _run(self, project_id: str) -> None:
        delay = RETRY_FIRST
        try:
            while self._held.holds(project_id):
                await asyncio.sleep(delay)
                try:
                    await self._attempt(project_id)
                except Exception as exc:  # the log is still down, or the room failed again
                    logger.info(
                        "relog attempt failed",
                        extra={
                            "action": "collab.relog_retry",
                            "project": project_id,
                            "error": repr(exc),
                        },
                    )
                delay = min(delay * 2, RETRY_MAX)
        finally:
            del self._tasks[project_id]

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._held.drop_all()


def _warn(project_id: str, count: int, why: str) -> None:
    if count:
        logger.warning(
            "unlogged updates dropped: %s",
            why,
            extra={"action": "collab.relog_dropped", "project": project_id, "updates": count},
        )
