"""The rooms of one server: at most one live room per project, loaded once however many sockets
join at the same moment, unloaded after its last socket left and an idle delay.

Admission limits live here too: at most `sockets_per_user` peers of one user in one room
(4429), and a peer's access ends when its token expires (4401; a Hocuspocus document may renew
it by authenticating again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pycrdt import Doc

from crdt import document
from dbdrivers.shared import Shared
from eventstore import AppendResult, EventStore, EventStoreError
from jacameno.bus import Bus
from jacameno.collab import loading
from jacameno.collab.connection import Connection
from jacameno.collab.errors import (
    GOING_AWAY,
    MalformedMessage,
    RoomUnavailable,
    TooManySockets,
    Unauthenticated,
)
from jacameno.collab.gatekeeper import Access, Gatekeeper
from jacameno.collab.ledger import EarlyLedger
from jacameno.collab.membership import MembershipChange
from jacameno.collab.peer import Dialect, Kind, Outgoing, Peer
from jacameno.collab.recovered import Witness
from jacameno.collab.relay import Relay
from jacameno.collab.revision import revise, revoke
from jacameno.collab.room import Actor, Room
from jacameno.collab.sessions import SessionLog
from jacameno.collab.tasks import log_failure, within
from jacameno.collab.timings import Timings
from jacameno.collab.unlogged import Held, Relogger
from jacameno.collab.writer import Committed
from jacameno.settings.collab import CollabConfig
from sqldb import DatabaseUnavailable

logger = logging.getLogger(__name__)


def node_name() -> str:
    """Unique per process start (also for two apps in one process, as in tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(slots=True)
class _Entry:
    load: Shared[Room]
    closing: asyncio.Task[None] | None = None
    unload_timer: asyncio.TimerHandle | None = None
    room: Room | None = field(default=None)
    # Loaded while an admission was decided (`Rooms.admit`), which then failed: unloaded as
    # soon as it is loaded, unless a socket is in it or being let in.
    unwanted: bool = False

    @property
    def loading(self) -> asyncio.Task[Room]:
        return self.load.task


@dataclass(slots=True)
class _Attaching:
    """The sockets of one project being let in, and the membership changes seen meanwhile."""

    sockets: int = 0
    changes: int = 0


class Rooms:
    """The room registry, built in the app's lifespan (then `start`ed) and closed before the
    store. With a `bus` (several nodes), rooms publish what they commit and follow the others
    (jacameno.collab.relay); a room is subscribed to its project's channel while loaded."""

    def __init__(
        self,
        store: EventStore,
        gatekeeper: Gatekeeper,
        config: CollabConfig,
        node: str | None = None,
        bus: Bus | None = None,
        timings: Timings | None = None,
        ledger: EarlyLedger | None = None,
    ) -> None:
        self.store = store
        # on-receipt mode: where what is sent early is recorded (jacameno.collab.ledger)
        self.ledger = ledger
        self.timings = timings or Timings()
        self.gatekeeper = gatekeeper
        self.config = config
        self.node = node or node_name()
        self._entries: dict[str, _Entry] = {}
        self._attaching: dict[str, _Attaching] = {}
        self._changes = 0  # membership changes applied (see `admit` and `attach`)
        self._closed = False
        self.loads = 0
        # Snapshot folds run one at a time: pycrdt holds the GIL through a fold, so rooms folding
        # together in threads would starve the event loop (measured: 300 ms stalls at 20 rooms).
        self._folds = asyncio.Semaphore(1)
        self.relay = None if bus is None else Relay(bus, self.node, self, config.log_check_interval)
        self.sessions = SessionLog(
            store, self.node, config.sessions_logged_per_minute, self._sessions_logged
        )
        # What failed rooms broadcast on receipt but did not log: logged by the next load.
        self.held = Held(config.relog_seconds, config.max_document_bytes)
        self._relogger = Relogger(self.held, self._relog)

    def start(self) -> None:
        """Before the first socket: the relay started, pycrdt's first-use cost paid."""
        document.warm_up()
        if self.relay is not None:
            self.relay.start()

    def __contains__(self, project_id: str) -> bool:
        return project_id in self._entries

    def loaded(self, project_id: str) -> Room | None:
        entry = self._entries.get(project_id)
        return None if entry is None else entry.room

    def live(self) -> list[Room]:
        """The loaded rooms that are neither failed nor closing."""
        return [
            e.room
            for e in self._entries.values()
            if e.room is not None and not e.room.failed and e.closing is None
        ]

    async def open(self, project_id: str) -> Room:
        """The project's live room, loading it if needed (concurrent callers share one load).
        The caller must `join` it before its next await. RoomUnavailable if it cannot load."""
        while True:
            if self._closed:
                raise RoomUnavailable("the server is shutting down")
            entry = self._entries.get(project_id)
            if entry is None:
                entry = _Entry(Shared(self._load(project_id), name="room-load"))
                self._entries[project_id] = entry
            if entry.closing is not None:
                await asyncio.shield(entry.closing)
                continue
            try:
                async with asyncio.timeout(self.config.append_timeout):
                    room = await entry.load.wait()
            except TimeoutError as exc:  # the load goes on; later joiners wait for it again
                raise RoomUnavailable("the document cannot be loaded now") from exc
            except (EventStoreError, MalformedMessage) as exc:
                if self._entries.get(project_id) is entry:
                    del self._entries[project_id]
                raise RoomUnavailable("the document cannot be loaded now") from exc
            if room.failed or self._entries.get(project_id) is not entry:
                continue
            if entry.unload_timer is not None:
                entry.unload_timer.cancel()
                entry.unload_timer = None
            return room

    async def write(self, project_id: str, update: bytes, actor: Actor) -> int | None:
        """A server-side edit of `project_id` (Room.write): through the project's room on this
        node, loaded for the edit if no socket has it open (and unloaded after `unload_delay`
        like any room nobody is in), so it reaches this node's sockets at once and the other
        nodes' through the relay. The version it took, or None if it changed nothing.
        RoomUnavailable if the room cannot load or fails before the append is confirmed.
        The caller decides who may write and that the project exists (the HTTP endpoint asks
        the read model); the rooms do not."""
        async with self._writing(project_id) as room:
            return await room.write(update, actor)

    async def edit(
        self, project_id: str, change: Callable[[Doc[Any]], None], actor: Actor
    ) -> int | None:
        """A server-side edit made by `change` on a copy of the current document (Room.edit),
        as `write`."""
        async with self._writing(project_id) as room:
            return await room.edit(change, actor)

    @contextlib.asynccontextmanager
    async def _writing(self, project_id: str) -> AsyncIterator[Room]:
        """The project's room for a server-side write, loaded if need be; unloaded after
        `unload_delay` if no socket is in it."""
        room = await self.open(project_id)
        try:
            yield room
        finally:
            if not room.peers and not room.failed:
                self._schedule_unload(room)

    async def attach(
        self,
        project_id: str,
        connection: Connection,
        access: Access,
        dialect: Dialect,
        peer_id: str | None = None,
        since: float | None = None,
    ) -> tuple[Room, Peer]:
        """Join the project's room (every dialect's way in): the peer gets sync step 1 and the
        awareness states, and `session.joined` is logged. RoomUnavailable if it cannot load;
        Unauthenticated, Forbidden or NoSuchProject if `access` is no longer what the read
        model says; TooManySockets if the user has `sockets_per_user` peers in the room.
        `since` (`time.perf_counter()`; default now): when the socket's way in reached the
        server, from which its sync is timed (jacameno.collab.timings).

        `access` was decided on the read model before this call, and a membership change may
        have been applied to the rooms since (`apply_membership`, which runs only once the read
        model has the change): so the access is read again, and again as long as a change of
        the project arrives before the peer has joined, unless no change at all was applied
        since `admit` began (`Access.changes_seen`). A later change finds it in the room."""
        attaching = self._attaching.setdefault(project_id, _Attaching())
        attaching.sockets += 1
        # An access decided since the last membership change this node applied is as the read
        # model has it: reading it again would be one more round trip for every joiner.
        current = access.changes_seen == self._changes
        try:
            while True:
                seen = attaching.changes
                if not current:
                    access = await self._recheck(project_id, access)
                current = False
                room = await self.open(project_id)
                if attaching.changes == seen:
                    break
        finally:
            attaching.sockets -= 1
            if not attaching.sockets:
                del self._attaching[project_id]
        user_peers = sum(1 for p in room.peers.values() if p.access.user_id == access.user_id)
        if user_peers >= self.config.sockets_per_user:
            raise TooManySockets("too many connections of this user to this project")
        joining = (time.perf_counter() if since is None else since, self.timings.synced)
        peer = Peer(connection, dialect, access, time.monotonic(), peer_id, joining)
        room.join(peer, dialect.key.split(":", 1)[0])
        self.watch_expiry(room, peer)
        logger.info(
            "joined",
            extra={
                "action": "collab.join",
                "project": project_id,
                "connection": peer.id,
                "user": access.user_id,
                "role": access.role,
            },
        )
        return room, peer

    def detach(self, room: Room, peer: Peer) -> None:
        """Leave: the peer's awareness is cleared for the others, `session.left` is logged.
        Nothing happens if it already left (a revoked peer leaves when it is revoked)."""
        if not room.leave(peer):
            return
        logger.info(
            "left",
            extra={
                "action": "collab.leave",
                "project": room.project_id,
                "connection": peer.id,
                "code": peer.close_code,
            },
        )

    def _sessions_logged(self, project_id: str, result: AppendResult) -> None:
        """Session events took these versions: the room and the other nodes move past them
        as past another node's commit (nothing to apply)."""
        committed = Committed(result.first_version, result.last_version, [])
        room = self.loaded(project_id)
        if room is not None and not room.failed:
            room.receive_committed(committed)
        if self.relay is not None:
            self.relay.publish_committed(project_id, committed)

    def watch_expiry(self, room: Room, peer: Peer) -> None:
        """(Re)arm the timers of `peer`'s access token: a token request `token_renewal_ahead`
        seconds before it expires (dialects that have one), and its revocation (4401) when it
        expires."""
        if peer.expiry is not None:
            peer.expiry.cancel()
            peer.expiry = None
        expires_at = peer.access.expires_at
        if expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, expires_at - time.time())
        # Asked once per token, so a token that is not renewed (or answered with itself) just
        # expires; a token that arrives with less than `token_renewal_ahead` left is asked
        # about at once.
        ahead = max(0.0, delay - self.config.token_renewal_ahead)
        if delay > 0 and peer.renewal_asked != expires_at:
            peer.expiry = loop.call_later(ahead, self._ask_renewal, room, peer, delay - ahead)
        else:
            peer.expiry = loop.call_later(delay, self._expire, room, peer)

    def _ask_renewal(self, room: Room, peer: Peer, delay: float) -> None:
        peer.expiry = None
        peer.renewal_asked = peer.access.expires_at
        if room.peers.get(peer.id) is peer:
            peer.deliver(Outgoing(Kind.TOKEN_REQUEST, b""))
            peer.expiry = asyncio.get_running_loop().call_later(delay, self._expire, room, peer)

    def _expire(self, room: Room, peer: Peer) -> None:
        peer.expiry = None
        if room.peers.get(peer.id) is peer:
            revoke(room, peer, Unauthenticated("the access token expired"))

    def apply_membership(self, change: MembershipChange) -> None:
        """Revise the access of this server's peers of the project (`revision.revise`), or of every
        project for a deleted user, and make sockets being let in check their access again
        (see `attach`)."""
        self.gatekeeper.changed(change.project_id)  # before the rechecks it makes happen
        self._changes += 1
        if change.project_id is None:
            for each in self._attaching.values():
                each.changes += 1
            rooms = self.live()
        else:
            attaching = self._attaching.get(change.project_id)
            if attaching is not None:
                attaching.changes += 1
            room = self.loaded(change.project_id)
            rooms = [] if room is None or room.failed else [room]
        for room in rooms:
            revise(room, change)

    async def admit(self, project_id: str, token: str | None) -> Access:
        """Whether `token` may open `project_id` (the gatekeeper's answer): AdmissionError if
        not; RoomUnavailable if the database fails or does not answer within
        `append_timeout` (a node whose link went silent refuses at once instead of hanging).

        Once the token's signature holds, the project's room (if not loaded) is loaded while
        the read model is asked, so the load is not one more wait on the join's path; if the
        admission then fails, that room is unloaded at once unless a socket is in it or being
        let in. Nothing of the room reaches the socket before it is admitted."""
        changes = self._changes
        prefetched: _Entry | None = None

        def vouched() -> None:  # the gatekeeper calls it at most once
            nonlocal prefetched
            prefetched = self._prefetch(project_id)

        try:
            # A timeout in the task itself, not a task of its own (`within`): each task a join
            # waits for is one more turn of a loop that a burst of joiners keeps busy. A caller
            # giving up on the gatekeeper's shared reads leaves them to the others at once.
            async with asyncio.timeout(self.config.append_timeout):
                access = await self.gatekeeper.admit(project_id, token, vouched)
        except BaseException as exc:
            if prefetched is not None:
                self._release(project_id, prefetched)
            if isinstance(exc, (EventStoreError, DatabaseUnavailable, TimeoutError)):
                raise RoomUnavailable("try again later") from exc
            raise
        return replace(access, changes_seen=changes)

    def _prefetch(self, project_id: str) -> _Entry | None:
        """Begin loading the project's room if it is neither loaded nor loading: the entry,
        else None. A load nobody joins is unloaded after `unload_delay` like an empty room; a
        failed one is forgotten (the next `open` loads again)."""
        if self._closed or project_id in self._entries:
            return None
        entry = _Entry(Shared(self._load(project_id), name="room-load"))
        self._entries[project_id] = entry
        entry.loading.add_done_callback(lambda _: self._prefetched(project_id, entry))
        return entry

    def _prefetched(self, project_id: str, entry: _Entry) -> None:
        if self._entries.get(project_id) is not entry:
            return
        if entry.loading.cancelled() or entry.loading.exception() is not None:
            del self._entries[project_id]  # `_load` logged why; a joiner waiting is told
            return
        room = entry.room
        if room is None or room.peers or project_id in self._attaching:
            return
        if entry.unwanted:
            self._unload(room)
        else:
            self._schedule_unload(room)  # cancelled by the `open` of whoever joins

    def _release(self, project_id: str, entry: _Entry) -> None:
        """The admission that began loading this room failed: unload it (now, or as soon as it
        is loaded) unless a socket is in it or being let in."""
        entry.unwanted = True
        if entry.loading.done():
            self._prefetched(project_id, entry)

    async def _recheck(self, project_id: str, access: Access) -> Access:
        try:
            recheck = self.gatekeeper.recheck(project_id, access)
            return await within(self.config.append_timeout, recheck)
        except (EventStoreError, DatabaseUnavailable, TimeoutError) as exc:
            raise RoomUnavailable("try again later") from exc

    @contextlib.asynccontextmanager
    async def session(
        self,
        project_id: str,
        connection: Connection,
        access: Access,
        dialect: Dialect,
        since: float | None = None,
    ) -> AsyncIterator[tuple[Room, Peer]]:
        """`attach` for the duration of the block, then `detach`."""
        room, peer = await self.attach(project_id, connection, access, dialect, since=since)
        try:
            yield room, peer
        finally:
            self.detach(room, peer)

    async def _load(self, project_id: str) -> Room:
        relay = self.relay
        if relay is not None:
            # Subscribed before reading the log: what commits after the read is published.
            await relay.subscribe(project_id)
        try:
            loaded = await loading.load(self.store, project_id)
        except (EventStoreError, MalformedMessage) as exc:
            if relay is not None:
                relay.unsubscribe(project_id)
            logger.warning(
                "room load failed",
                extra={"action": "collab.load_failed", "project": project_id, "error": repr(exc)},
            )
            raise
        self.loads += 1
        witness = None if self.ledger is None else Witness(self.ledger, project_id)
        room = Room(
            project_id,
            self.store,
            loaded,
            self.config,
            self.node,
            folds=self._folds,
            on_empty=self._schedule_unload,
            on_failed=self._forget,
            sessions=self.sessions,
            publisher=relay,
            timings=self.timings,
            witness=witness,
        )
        if relay is not None:
            room.follow_log()  # what was published while the document was being built
        entry = self._entries.get(project_id)
        if entry is not None:
            entry.room = room
        # Before any socket's update; after `entry.room`, so that a failure forgets the room.
        room.relog(self.held.take(project_id))
        logger.info(
            "room loaded",
            extra={"action": "collab.load", "project": project_id, "version": loaded.version},
        )
        return room

    def _schedule_unload(self, room: Room) -> None:
        entry = self._entries.get(room.project_id)
        if entry is None or entry.room is not room or entry.closing is not None:
            return
        if entry.unload_timer is not None:
            entry.unload_timer.cancel()
        loop = asyncio.get_running_loop()
        entry.unload_timer = loop.call_later(self.config.unload_delay, self._unload, room)

    def _unload(self, room: Room) -> None:
        entry = self._entries.get(room.project_id)
        if entry is None or entry.room is not room or room.peers or entry.closing is not None:
            return
        entry.unload_timer = None
        entry.closing = asyncio.create_task(self._close_room(room, entry))

    async def _close_room(self, room: Room, entry: _Entry) -> None:
        if self.relay is not None:
            self.relay.unsubscribe(room.project_id)
        try:
            await room.close()
        finally:
            if self._entries.get(room.project_id) is entry:
                del self._entries[room.project_id]
            logger.info(
                "room unloaded",
                extra={"action": "collab.unload", "project": room.project_id},
            )

    async def _relog(self, project_id: str) -> None:
        """Load the project's room (its load logs the updates held for it), wait for their
        commits, and let it unload if no socket is in it."""
        async with self._writing(project_id) as room:
            for done in list(room.relogging):
                await done

    def _forget(self, room: Room) -> None:
        if room.unlogged and not self._closed:
            self.held.hold(room.project_id, room.unlogged)
            self._relogger.retry(room.project_id)
        entry = self._entries.get(room.project_id)
        if entry is not None and entry.room is room:
            if entry.unload_timer is not None:
                entry.unload_timer.cancel()
            del self._entries[room.project_id]
            if self.relay is not None:
                self.relay.unsubscribe(room.project_id)

    async def close(self) -> None:
        """Close every socket (1001) and finish every room's writes and last snapshot, each
        room within `drain_timeout` (Room.close)."""
        self._closed = True
        for entry in list(self._entries.values()):
            room = entry.room
            if room is not None:
                for peer in list(room.peers.values()):
                    peer.connection.close(GOING_AWAY, "server shutting down")
                    room.leave(peer)  # its session.left is logged before the log closes
            if entry.unload_timer is not None:
                entry.unload_timer.cancel()
        tasks = []
        for entry in list(self._entries.values()):
            if entry.closing is not None:
                tasks.append(entry.closing)
            elif entry.room is not None and not entry.room.failed:
                entry.closing = asyncio.create_task(self._close_room(entry.room, entry))
                tasks.append(entry.closing)
            else:
                entry.loading.cancel()
                await asyncio.wait({entry.loading})  # not `await`: its cancellation is not ours
                # A store's or the document's failure was logged by `_load`; anything else not.
                log_failure(entry.loading, "room load failed", (EventStoreError, MalformedMessage))
        for task in tasks:
            await asyncio.wait({task})
            log_failure(task, "room close failed")
        await self.sessions.drain(self.config.drain_timeout)
        await self._relogger.close()
        if self.relay is not None:
            await self.relay.close()
