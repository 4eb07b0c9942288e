"""The session log: `session.joined` and `session.left`, written apart from the document.

Session events are bookkeeping. They are appended by one task per node, never in the same
append as a document update, so that no failure of theirs can fail a room: a refused or failed
append is logged as a warning and the sockets stay. Sessions pair: a `session.left` is written
for every `session.joined` in the log (also when the room fails or the server shuts down), and
for no other; a `session.joined` whose append failed gets no `session.left`.

Reconnecting in a loop must not fill the log: each user may have `sessions_logged_per_minute`
sessions per project logged on a node (a token bucket of that size, refilled at that rate);
sessions beyond it are served as usual but not logged, neither joined nor left.

Everything a client chooses that reaches a session event (a Hocuspocus document name and its
session suffix) goes through `safe_label` first: no NUL, no control character, bounded.

Each append is reported to `on_logged` (project id, result): the project's room takes the
versions as it takes another node's commit (they hold no document update), and the relay tells
the other nodes, so that no room reads the log to find out what the versions were."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from domain import events
from eventstore import AppendResult, EventStore, EventStoreError, NewEvent
from jacameno.collab.peer import Peer

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def safe_label(text: str) -> str:
    """`text` if it is a short plain token, else a digest of it: fit for logs and events."""
    if _SAFE.fullmatch(text):
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _State(enum.Enum):
    QUEUED = "queued"
    LOGGED = "logged"
    FAILED = "failed"


@dataclass(slots=True)
class _Session:
    state: _State = _State.QUEUED


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class _Item:
    session: _Session
    event: NewEvent
    joined: bool


@dataclass(slots=True)
class SessionLog:
    """One per node (built by `Rooms`). `joined` and `left` never raise and never wait."""

    store: EventStore
    node: str
    per_minute: int
    on_logged: Callable[[str, AppendResult], None] | None = None
    clock: Callable[[], float] = time.monotonic
    _open: dict[Peer, _Session] = field(default_factory=dict)
    _queue: dict[str, list[_Item]] = field(default_factory=dict)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    skipped: int = 0  # sessions not logged because of the rate

    def joined(self, project_id: str, peer: Peer, dialect: str) -> None:
        """Queue `session.joined` for `peer`, unless its user is over the rate."""
        if not self._admit(peer.access.user_id, project_id):
            self.skipped += 1
            logger.info(
                "session not logged: too many sessions",
                extra={
                    "action": "collab.session_not_logged",
                    "project": project_id,
                    "user": peer.access.user_id,
                },
            )
            return
        session = self._open[peer] = _Session()
        event = events.session_event(
            events.SESSION_JOINED,
            user_id=peer.access.user_id,
            connection_id=peer.id,
            node=self.node,
            role=peer.access.role,
            dialect=dialect,
        )
        self._enqueue(project_id, _Item(session, event, joined=True))

    def left(self, project_id: str, peer: Peer, code: int | None) -> None:
        """Queue `session.left` for `peer` if its `session.joined` was (or is being) logged."""
        session = self._open.pop(peer, None)
        if session is None or session.state is _State.FAILED:
            return
        event = events.session_event(
            events.SESSION_LEFT,
            user_id=peer.access.user_id,
            connection_id=peer.id,
            node=self.node,
            seconds=round(time.monotonic() - peer.joined_at, 3),
            code=code,
        )
        self._enqueue(project_id, _Item(session, event, joined=False))

    @property
    def idle(self) -> bool:
        """Nothing queued nor being appended."""
        return self._task is None and not self._queue

    @property
    def open(self) -> int:
        """Sessions joined and not left yet."""
        return len(self._open)

    async def drain(self, timeout: float) -> None:
        """Wait until everything queued was appended (or failed), at most `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while self._task is not None:
                    await asyncio.shield(self._task)
        except TimeoutError:
            logger.warning(
                "session events abandoned at shutdown",
                extra={"action": "collab.sessions_abandoned", "streams": len(self._queue)},
            )

    def _admit(self, user_id: str, project_id: str) -> bool:
        now = self.clock()
        capacity = float(self.per_minute)
        key = (user_id, project_id)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * capacity / 60.0)
            bucket.at = now
        self._buckets[key] = bucket  # most recently used last
        self._prune(now)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        # A bucket untouched for a minute is full again: the same as no bucket.
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if now - oldest.at < 60.0:
                return
            del buckets[key]

    def _enqueue(self, project_id: str, item: _Item) -> None:
        self._queue.setdefault(project_id, []).append(item)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="collab-sessions")

    async def _run(self) -> None:
        try:
            while self._queue:
                batches, self._queue = self._queue, {}
                await asyncio.gather(*(self._append(p, items) for p, items in batches.items()))
        finally:
            self._task = None

    async def _append(self, project_id: str, items: list[_Item]) -> None:
        # A left whose joined failed in an earlier round is dropped; one whose joined is in
        # this round shares its fate (one append).
        items = [i for i in items if i.joined or i.session.state is not _State.FAILED]
        if not items:
            return
        stream = events.stream_name(project_id)
        try:
            result = await self.store.append(stream, [i.event for i in items])
        except EventStoreError as exc:
            for item in items:
                item.session.state = _State.FAILED
            logger.warning(
                "session events not logged",
                extra={
                    "action": "collab.session_log_failed",
                    "stream": stream,
                    "events": len(items),
                    "error": repr(exc),
                },
            )
            return
        for item in items:
            if item.joined:
                item.session.state = _State.LOGGED
        if self.on_logged is not None:
            self.on_logged(project_id, result)
