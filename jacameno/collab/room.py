"""A room: the live document of one open project, the peers editing it, and its write pipeline.

The durability rule, and how the room keeps it while writing in batches:

1. An update is checked (`update.check_update`), then applied to the room's document inside a
   transaction. Applying is the last validation: pycrdt refusing or panicking means 4400 and the
   update is never appended. The document now holds state that is not yet durable, so nothing
   the document says may leave the room until that state has committed.
2. The update joins the room's pending writes; one writer task appends everything pending as one
   append (the store group-commits appends of all rooms), then broadcasts each committed update
   to every peer, the sender included (its echo is its acknowledgement).
3. Everything else read from the document (sync step 1 and step 2 answers, snapshots) is
   computed when asked but released only once every update applied before it has committed.
4. If an append fails or outlasts `append_timeout`, the document may hold updates not in the log:
   the room fails, every socket gets 1013 (1011 if the log refused the update's content, or if
   the writer failed in any other way), and the next joiner loads the room from the log. Session
   events are not part of this pipeline (jacameno.collab.sessions): bookkeeping never fails a
   room.

With several nodes, committed batches and awareness also go on the bus, and other nodes'
appends are applied by the writer task in version order (jacameno.collab.relay).

A membership change (`Rooms.apply_membership`) revises a peer's access in place; a revoked peer
leaves the room at once, and anything it sends afterwards is refused with its revocation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from crdt import document
from crdt.document import EMPTY_UPDATE
from crdt.update import UpdateSummary, check_state_vector, check_update
from domain import events
from eventstore import EventStore, EventStoreError, InvalidEventError, NewEvent
from jacameno.collab import awareness
from jacameno.collab.clocks import ClockBound
from jacameno.collab.config import CollabConfig
from jacameno.collab.errors import (
    INTERNAL_ERROR,
    MALFORMED,
    TRY_AGAIN_LATER,
    Forbidden,
    MalformedMessage,
    MessageTooLarge,
    RoomUnavailable,
)
from jacameno.collab.loading import Loaded
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.relay import Committed, Relay
from jacameno.collab.sessions import SessionLog
from jacameno.collab.snapshots import Snapshots

logger = logging.getLogger(__name__)


class ReadOnly(Forbidden):
    """A viewer sent a document update; it is refused (never logged), the socket stays open."""


@dataclass(slots=True)
class _Write:
    event: NewEvent  # doc.updated
    update: bytes
    sender: Peer
    seq: int  # the room's count of applied updates after this one


class Room:
    def __init__(
        self,
        project_id: str,
        store: EventStore,
        loaded: Loaded,
        config: CollabConfig,
        node: str,
        on_empty: Callable[[Room], None],
        on_failed: Callable[[Room], None],
        sessions: SessionLog,
        folds: asyncio.Semaphore | None = None,
        relay: Relay | None = None,
    ) -> None:
        self.project_id = project_id
        self.stream = events.stream_name(project_id)
        self.doc = loaded.doc
        self._clocks = ClockBound(self.doc.get_state())
        self._nesting = loaded.nesting
        self.version = loaded.version
        self.peers: dict[str, Peer] = {}
        self.awareness = awareness.AwarenessStates(
            max_state_bytes=config.awareness_state_bytes,
            max_total_bytes=min(config.awareness_room_bytes, config.outbound_bytes // 2),
            removed_ttl=config.awareness_removed_ttl,
            max_removed=config.awareness_removed_kept,
        )
        self._sessions = sessions
        self.failed = False
        self._store = store
        self._config = config
        self._node = node
        self._on_empty = on_empty
        self._on_failed = on_failed
        self._pending: list[_Write] = []
        self._appending = 0  # events in the append under way
        self._writer: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._applied = 0
        self._committed = 0
        self._unlogged_bytes = 0
        self._relay = relay
        self._inbound: list[Committed] = []  # other nodes' appends, for the writer task
        self._stale = False  # the writer task must read the log after `version`
        self._deferred: deque[tuple[int, Peer, Outgoing | None]] = deque()  # None: acknowledge
        self._snapshots = Snapshots(
            store,
            self.stream,
            config,
            node,
            loaded.base,
            loaded.tail,
            folds or asyncio.Semaphore(1),
        )

    # -- peers --------------------------------------------------------------------------------

    def join(self, peer: Peer, dialect_name: str) -> None:
        """Add `peer`: it gets sync step 1 and the known awareness states (once every update
        applied so far is durable), then every committed update; `session.joined` is logged."""
        self._check_open()
        self.peers[peer.id] = peer
        self._defer(peer, Outgoing(Kind.SYNC_STEP1, self.doc.get_state()))
        states = self.awareness.encoded()
        if states is not None:
            self._defer(peer, Outgoing(Kind.AWARENESS, states))
        self._sessions.joined(self.project_id, peer, dialect_name)

    def leave(self, peer: Peer) -> bool:
        """Remove `peer`: clear the awareness states it introduced and tell the others; log
        `session.left`. False if it had already left."""
        if self.peers.pop(peer.id, None) is None:
            return False
        peer.stop()
        removal = self.awareness.remove(sorted(peer.awareness_clients))
        if removal is not None:
            self._relay_awareness(removal)
        self._sessions.left(self.project_id, peer, peer.close_code)
        if not self.peers:
            self._on_empty(self)
        return True

    # -- messages from peers ------------------------------------------------------------------

    async def receive_update(self, peer: Peer, update: bytes, summary: UpdateSummary) -> None:
        """Apply a checked update and queue it for the log. ReadOnly for viewers (nothing
        happens), MalformedMessage if it does not apply or nests types too deep (nesting.py),
        MessageTooLarge if the document would grow over its limit, RoomUnavailable if the room
        failed. Waits while the room has too many unlogged writes."""
        self._check_open(peer)
        if summary.empty:
            self._defer(peer, None)
            return
        if not peer.access.can_write:
            raise ReadOnly("viewers may not change the document")
        # An upper bound of the encoded document: the last snapshot plus every update since.
        size = self._snapshots.size + self._unlogged_bytes + len(update)
        if size > self._config.max_document_bytes:
            raise MessageTooLarge("the document would exceed its maximum size")
        placed = self._nesting.check(summary.runs, self._config.max_type_depth)
        known = self._clocks.covers(summary)
        changes: list[bytes] = []
        if known:
            # A provider's sync step 2 repeats its whole delete set on every reconnect: when
            # the update names only clocks the document has, its transaction tells whether it
            # changed anything, and a no-op is not logged.
            subscription = self.doc.observe(lambda event: changes.append(event.update))
        try:
            document.apply(self.doc, update, peer.id)
        except document.DocumentDamaged:
            peer.connection.close(MALFORMED, "update does not apply")
            logger.error(
                "update made pycrdt panic; room dropped",
                extra={"action": "collab.panic", "project": self.project_id, "peer": peer.id},
            )
            self.fail(TRY_AGAIN_LATER, "the room is reloading")
            raise
        finally:
            if known:
                self.doc.unobserve(subscription)
        self._clocks.advance(summary)
        self._nesting.record_resolved(placed)
        if known and all(change == EMPTY_UPDATE for change in changes):
            self._defer(peer, None)
            return
        self._applied += 1
        self._unlogged_bytes += len(update)
        self._enqueue(
            _Write(
                events.doc_updated(
                    update,
                    summary,
                    user_id=peer.access.user_id,
                    connection_id=peer.id,
                    node=self._node,
                ),
                update,
                peer,
                self._applied,
            )
        )
        while len(self._pending) >= self._config.max_pending_writes and not self.failed:
            self._progress.clear()
            await self._progress.wait()
        self._check_open()

    def answer_sync_step1(self, peer: Peer, state_vector: bytes) -> None:
        """Queue sync step 2: what the document has that `state_vector` lacks. TooManyRequests
        if the socket is over its budget of large answers."""
        self._check_open(peer)
        check_state_vector(state_vector)
        try:
            update = self.doc.get_update(state_vector)
        except ValueError as exc:
            raise MalformedMessage(f"state vector: {exc}") from exc
        peer.connection.sync_budget.charge(len(update))
        self._defer(peer, Outgoing(Kind.SYNC_STEP2, update))

    def receive_awareness(self, peer: Peer, payload: bytes) -> None:
        """Relay an awareness update to the room (the sender included) and remember it; only
        what the bounds let in (jacameno.collab.awareness), the rest is dropped.
        MalformedMessage for too many client ids on one socket."""
        self._check_open(peer)
        applied = self.awareness.apply(awareness.decode(payload), peer.id)
        if applied.dropped:
            fields = {"project": self.project_id, "peer": peer.id, "dropped": applied.dropped}
            logger.info("awareness dropped", extra={"action": "collab.awareness_dropped", **fields})
        if not applied.entries:
            return
        peer.awareness_clients.update(applied.present)
        peer.awareness_clients.difference_update(applied.removed)
        if len(peer.awareness_clients) > self._config.awareness_clients_per_socket:
            raise MalformedMessage("too many awareness clients on one socket")
        self._relay_awareness(payload if not applied.dropped else awareness.encode(applied.entries))

    def _relay_awareness(self, payload: bytes) -> None:
        self._broadcast(Outgoing(Kind.AWARENESS, payload))
        if self._relay is not None:
            self._relay.publish_awareness(self.project_id, payload)

    # -- other nodes --------------------------------------------------------------------------

    def receive_committed(self, committed: Committed) -> None:
        """Another node's committed append: applied in version order by the writer task."""
        self._inbound.append(committed)
        self._wake()

    def follow_log(self) -> None:
        """Read (in the writer task) the log after `version`: messages may have been lost."""
        self._stale = True
        self._wake()

    def receive_remote_awareness(self, payload: bytes) -> None:
        """An awareness update relayed by another node: kept and sent to this node's peers.
        MalformedMessage if it does not decode."""
        applied = self.awareness.apply(awareness.decode(payload))
        if applied.entries:
            self._broadcast(Outgoing(Kind.AWARENESS, awareness.encode(applied.entries)))

    def relay_stateless(self, peer: Peer, payload: str) -> None:
        """Relay a stateless message (Hocuspocus) to the other peers; never logged."""
        self._check_open(peer)
        message = Outgoing(Kind.STATELESS, payload.encode())
        for other in self.peers.values():
            if other is not peer:
                other.deliver(message)

    def send_awareness_states(self, peer: Peer) -> None:
        self._check_open(peer)
        states = self.awareness.encoded()
        if states is not None:
            peer.deliver(Outgoing(Kind.AWARENESS, states))

    # -- lifecycle ----------------------------------------------------------------------------

    def fail(self, code: int, reason: str) -> None:
        """Drop the room: close every socket with `code`; pending writes are abandoned (their
        senders are closed too, so they resync and resend)."""
        if self.failed:
            return
        self.failed = True
        for peer in list(self.peers.values()):
            peer.connection.close(code, reason)
            peer.stop()
            self._sessions.left(self.project_id, peer, code)
        self.peers.clear()
        self._pending.clear()
        self._deferred.clear()
        self._progress.set()
        self._on_failed(self)

    async def close(self) -> None:
        """Wait for pending writes and a running snapshot, then take a last snapshot if the log
        has updates after the latest one. The room must have no peers. After `drain_timeout`
        seconds, whatever is still under way is abandoned, with a warning."""
        try:
            async with asyncio.timeout(self._config.drain_timeout):
                await self._drain()
        except TimeoutError:
            self._abandon()

    async def _drain(self) -> None:
        while self._writer is not None:
            await asyncio.shield(self._writer)
        snapshots = self._snapshots
        if snapshots.running is not None:
            await asyncio.shield(snapshots.running)
        if snapshots.behind and not self.failed:
            snapshots.start(self.version)
            if snapshots.running is not None:
                await asyncio.shield(snapshots.running)

    def _abandon(self) -> None:
        # Nothing acknowledged is lost: updates are acknowledged only once committed, and their
        # senders resend them on reconnect (sync step 2). One under way may commit: harmless.
        logger.warning(
            "room closed with writes under way; they are abandoned",
            extra={
                "action": "collab.drain_abandoned",
                "project": self.project_id,
                "updates": self._applied - self._committed,
                "events": self._appending + len(self._pending),
                "snapshot": self._snapshots.running is not None,
                "seconds": self._config.drain_timeout,
            },
        )
        self.failed = True
        self._pending.clear()
        self._deferred.clear()
        self._progress.set()
        for task in (self._writer, self._snapshots.running):
            if task is not None:
                task.cancel()

    @property
    def snapshots(self) -> int:
        """Snapshots this room saved."""
        return self._snapshots.saved

    @property
    def busy(self) -> bool:
        return self._writer is not None

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self, peer: Peer | None = None) -> None:
        """RoomUnavailable if the room failed; a revoked `peer`'s revocation (an AdmissionError:
        whatever it sent after it was revoked is refused)."""
        if self.failed:
            raise RoomUnavailable("the room is reloading")
        if peer is not None and peer.revoked is not None:
            raise peer.revoked

    def _broadcast(self, message: Outgoing, sender: Peer | None = None) -> None:
        for peer in self.peers.values():
            if peer is not sender or peer.dialect.echoes:
                peer.deliver(message)

    def _defer(self, peer: Peer, message: Outgoing | None) -> None:
        """Send `message` (None: an acknowledgement) once every update applied so far has
        committed."""
        if self._committed < self._applied:
            self._deferred.append((self._applied, peer, message))
        elif message is None:
            peer.acknowledge()
        else:
            peer.deliver(message)

    def _enqueue(self, write: _Write) -> None:
        self._pending.append(write)
        self._wake()

    def _wake(self) -> None:
        if self._writer is None and not self.failed:
            self._writer = asyncio.create_task(self._write_loop(), name=f"room-{self.project_id}")

    async def _write_loop(self) -> None:
        # The one task that moves `version`: appends, catch-ups and other nodes' messages.
        try:
            while (self._pending or self._inbound or self._stale) and not self.failed:
                try:
                    async with asyncio.timeout(self._config.append_timeout):
                        if self._inbound or self._stale:
                            await self._follow()
                        if self._pending:
                            await self._append_pending()
                except InvalidEventError as exc:
                    # Not an unavailable log: it refused what the room sent. The document
                    # holds it unlogged, so the room still reloads.
                    self._drop(exc, "the log refused an update", "collab.append_refused")
                    self.fail(INTERNAL_ERROR, "the log refused an update")
                    return
                except (EventStoreError, TimeoutError) as exc:  # a silent log is unavailable
                    self._drop(exc, "append failed", "collab.append_failed")
                    self.fail(TRY_AGAIN_LATER, "the log is unavailable")
                    return
                except MalformedMessage as exc:
                    self._drop(
                        exc, "the log holds an update that does not apply", "collab.poisoned_log"
                    )
                    self.fail(INTERNAL_ERROR, "the document cannot be loaded")
                    return
                except Exception:  # a bug: a batch may be logged yet never broadcast
                    extra = {"action": "collab.writer_crashed", "project": self.project_id}
                    logger.exception("the room's writer crashed; room dropped", extra=extra)
                    self.fail(INTERNAL_ERROR, "internal error")
                    return
        finally:
            self._writer = None
            self._appending = 0

    def _drop(self, exc: Exception, message: str, action: str) -> None:
        extra = {"action": action, "project": self.project_id, "error": repr(exc)}
        if isinstance(exc, EventStoreError | TimeoutError) and not isinstance(
            exc, InvalidEventError
        ):
            logger.warning(f"{message}; room dropped", extra=extra)
        else:
            logger.error(message, extra=extra)

    async def _append_pending(self) -> None:
        batch, self._pending = self._pending, []
        self._appending = len(batch)
        self._progress.set()
        result = await self._store.append(self.stream, [w.event for w in batch])
        if result.first_version != self.version + 1:
            await self._catch_up(result.first_version - 1)
        self.version = result.last_version
        self._committed_batch(batch)
        if self._relay is not None:
            updates = [w.update for w in batch]
            committed = Committed(result.first_version, result.last_version, updates)
            self._relay.publish_committed(self.project_id, committed)

    async def _follow(self) -> None:
        """Other nodes' appends in version order: a message that follows `version` as it is,
        the log when one was missed (or may have been), nothing already applied."""
        inbound, self._inbound = self._inbound, []
        for committed in inbound:
            if committed.last <= self.version:
                continue
            if committed.first == self.version + 1:
                self._apply_others(committed.updates)
                self.version = committed.last
            else:
                await self._catch_up(committed.last)
        if self._stale:
            self._stale = False
            await self._catch_up(None)

    async def _catch_up(self, to_version: int | None) -> None:
        """Apply and broadcast doc updates other writers appended (versions after ours, up to
        `to_version` or the end)."""
        missing = await self._store.read_stream(self.stream, self.version + 1, to_version)
        self._apply_others([e.data for e in missing if e.type == events.DOC_UPDATED])
        if missing:
            self.version = missing[-1].version

    def _apply_others(self, updates: Iterable[bytes]) -> None:
        """Updates other writers logged; MalformedMessage if one does not apply."""
        for update in updates:
            summary = check_update(update, logged=True)
            document.apply(self.doc, update, "log")
            self._clocks.advance(summary)
            self._nesting.record(summary.runs)
            self._snapshots.record(update)
            self._broadcast(Outgoing(Kind.UPDATE, update))

    def _committed_batch(self, batch: list[_Write]) -> None:
        for write in batch:
            sender = write.sender
            self._broadcast(Outgoing(Kind.UPDATE, write.update), sender)
            if self.peers.get(sender.id) is sender:
                sender.acknowledge()
            self._snapshots.record(write.update)
            self._unlogged_bytes -= len(write.update)
            self._committed = write.seq
        while self._deferred and self._deferred[0][0] <= self._committed:
            _, peer, message = self._deferred.popleft()
            if self.peers.get(peer.id) is peer:
                if message is None:
                    peer.acknowledge()
                else:
                    peer.deliver(message)
        if self._snapshots.due():
            self._snapshots.start(self.version)
