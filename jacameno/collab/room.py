"""A room: the live document of one open project, the peers editing it, their awareness, and the
room's lifecycle. The document and its write pipeline belong to the room's single writer
(jacameno.collab.writer), which holds the durability rule: nothing the document says leaves the
room before it is durable. Socket edits (`receive_update`) and server-side edits (`write`, for
restore and AI results) take the same path: checked, applied, appended, then broadcast.

The one exception is `JACAMENO_COLLAB_BROADCAST=on-receipt`: a writer's update that applied (so
it is valid and changed something) goes to the room's other local sockets at once; its sender's
acknowledgement, other nodes and everything else (sync answers, snapshots) still wait for the
commit. A viewer's update, a malformed one or a no-op is never broadcast.

With several nodes, committed batches and awareness also go to a publisher (the relay,
jacameno.collab.relay, which imports the room, never the reverse), and other nodes' appends are
applied by the writer task in version order.

A membership change (`Rooms.apply_membership`) revises a peer's access in place; a revoked peer
leaves the room at once, and anything it sends afterwards is refused with its revocation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from crdt import document
from crdt.split import CannotSplit, split
from crdt.update import (
    UpdateSummary,
    check_state_vector,
    check_update,
    encode_state_vector,
    merged_state,
)
from domain import events
from eventstore import EventStore
from jacameno.collab import awareness
from jacameno.collab.errors import (
    MALFORMED,
    TRY_AGAIN_LATER,
    Forbidden,
    MalformedMessage,
    MessageTooLarge,
    RoomUnavailable,
)
from jacameno.collab.loading import Loaded
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.recovered import Part, Witness
from jacameno.collab.sessions import SessionLog
from jacameno.collab.timings import Timings
from jacameno.collab.unlogged import Unlogged
from jacameno.collab.writer import Committed, Publisher, Writer, checked
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)

# Clocks a part of a server-side edit deletes at most (`edit`): the room applies each part on the
# event loop, where yrs deletes and collects its items. Measured (pycrdt, deleting 20,000 comment
# maps and 20,000 characters typed in fragments): one update 629 ms; parts of 20,000 clocks at
# most 447 ms each; of 4,000, at most 107 ms.
DELETED_PER_UPDATE = 4_000


class ReadOnly(Forbidden):
    """A viewer sent a document update; it is refused (never logged), the socket stays open."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Whom a server-side edit is made for: the log's `user_id` (a member, or a service user)
    and what made it (`via`: "restore", "ai", "api", ...), logged as the event's `via`."""

    user_id: str
    via: str
    # more of the event's metadata: a restore's `restores` ({"version", "path"}), so that the
    # update itself says what it restored, in the same append
    context: Mapping[str, Any] = field(default_factory=dict)


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
        publisher: Publisher | None = None,
        timings: Timings | None = None,
        witness: Witness | None = None,
    ) -> None:
        self.project_id = project_id
        # on-receipt mode: records what is sent early, and who made what a client brings back
        # after a node's death (jacameno.collab.ledger)
        self._witness = witness
        self.stream = events.stream_name(project_id)
        self.peers: dict[str, Peer] = {}
        self.awareness = awareness.AwarenessStates(
            max_state_bytes=config.awareness_state_bytes,
            max_total_bytes=min(config.awareness_room_bytes, config.outbound_bytes // 2),
            removed_ttl=config.awareness_removed_ttl,
            max_removed=config.awareness_removed_kept,
        )
        self.failed = False
        # Set when the room fails: the updates its other sockets saw that were not logged, for
        # the node to log (jacameno.collab.unlogged); and the commits of those it logs again.
        self.unlogged: list[Unlogged] = []
        self.relogging: list[asyncio.Future[int]] = []
        self._sessions = sessions
        self._config = config
        # the whole document as last sent to a newcomer before it asked (`_sync_early`): the
        # writer's generation it was encoded at, the message (None: over the bound), its state
        self._whole: tuple[tuple[int, int], Outgoing | None, dict[int, int]] | None = None
        self._node = node
        self._on_empty = on_empty
        self._on_failed = on_failed
        self.writer = Writer(
            project_id,
            store,
            loaded,
            config,
            node,
            self,
            folds or asyncio.Semaphore(1),
            publisher,
            timings,
        )

    @property
    def doc(self) -> Doc[Any]:
        return self.writer.doc

    @property
    def version(self) -> int:
        """The stream version the document reflects (committed or being committed)."""
        return self.writer.version

    # -- peers --------------------------------------------------------------------------------

    def join(self, peer: Peer, dialect_name: str) -> None:
        """Add `peer`: it gets sync step 1 and the known awareness states (once every update
        applied so far is durable), then every committed update; `session.joined` is logged."""
        self._check_open()
        self.peers[peer.id] = peer
        self.writer.defer(peer, Outgoing(Kind.SYNC_STEP1, self.doc.get_state()))
        if peer.dialect.early_sync:
            self._sync_early(peer)
        states = self.awareness.encoded()
        if states is not None:
            self.writer.defer(peer, Outgoing(Kind.AWARENESS, states))
        self._sessions.joined(self.project_id, peer, dialect_name)

    def _sync_early(self, peer: Peer) -> None:
        """Send `peer` the whole document (sync step 2) before it asks, when it is smaller than
        `large_sync_bytes` (an answer the socket's sync budget does not count): a newcomer is
        synced without waiting for its sync step 1 to arrive and be answered (a round trip,
        and a turn behind every other joiner of the moment). A larger document is only sent
        as the answer, which leaves out what a reconnecting client holds. Concurrent joiners
        share one encoding of it."""
        generation = self.writer.generation
        whole = self._whole
        if whole is None or whole[0] != generation:
            update = self.doc.get_update()
            if len(update) >= self._config.large_sync_bytes:
                whole = (generation, None, {})
            else:
                state = check_state_vector(self.doc.get_state())
                whole = (generation, Outgoing(Kind.SYNC_STEP2, update), state)
            self._whole = whole
        _, message, state = whole
        if message is not None:
            peer.early_state = state
            self.writer.defer(peer, message)

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

    def present(self, peer: Peer) -> bool:
        return self.peers.get(peer.id) is peer

    def broadcast(self, message: Outgoing, sender: Peer | None = None) -> None:
        for peer in self.peers.values():
            if peer is not sender or peer.dialect.echoes:
                peer.deliver(message)

    # -- edits ----------------------------------------------------------------------------------

    async def receive_update(self, peer: Peer, update: bytes, summary: UpdateSummary) -> None:
        """Apply a checked update and queue it for the log. ReadOnly for viewers (nothing
        happens), MalformedMessage if it does not apply or nests types too deep (nesting.py),
        MessageTooLarge if the document would grow over its limit, RoomUnavailable if the room
        failed. Waits while the room has too many unlogged writes."""
        self._check_open(peer)
        writer = self.writer
        if summary.empty:
            writer.defer(peer, None)
            return
        if not peer.access.can_write:
            raise ReadOnly("viewers may not change the document")
        if writer.depths.must_wait(summary):
            await writer.depths.wait()
            self._check_open(peer)
        user = peer.access.user_id
        witness = self._witness
        if witness is None:
            parts = [Part(update, summary, None)]
        else:
            if not peer.recalled and not writer.covers(summary):
                await witness.recall(peer, self.doc)
                self._check_open(peer)
            # Other users' edits that a dead node broadcast early, brought back by this socket?
            parts = witness.attribute(update, summary, self.doc, user)
        if not self._apply(update, summary, peer.id, peer):
            writer.defer(peer, None)
            return
        early = self._config.early_broadcast
        others = [other for other in self.peers.values() if other is not peer] if early else []
        # Whose sockets are sent it early: only another user's could bring it back after this
        # node's death and need the ledger to say who made it (one of the author's own is
        # given it by default), so a user editing alone, or in several tabs, records nothing.
        holders = {other.access.user_id for other in others} if witness is not None else set()
        for n, (part, part_summary, author) in enumerate(parts, 1):
            event = events.doc_updated(
                part,
                part_summary,
                user_id=author or user,
                connection_id=peer.id,
                node=self._node,
                context=None if author is None else {"brought_by": user},
            )
            last = n == len(parts)  # acknowledges the socket's update
            writer.submit(
                event,
                part,
                peer if last else None,
                early=early,
                hold=early,
                received=peer.connection.received_at if last else 0.0,
            )
            if witness is not None and holders - {author or user}:
                witness.sent(part_summary, author or user, peer.id)
        if early:
            # On-receipt mode: the others see it now; the sender's echo (its acknowledgement)
            # waits for the commit (jacameno.collab.writer). If the commit fails, the room
            # fails and its clients, who hold the update, bring it back on reconnect.
            writer.send_early(Outgoing(Kind.UPDATE, update), others)
        await writer.backpressure()
        self._check_open()

    async def write(self, update: bytes, actor: Actor) -> int | None:
        """A server-side edit: check `update` as a socket's, apply it, append it as `actor`'s,
        broadcast it to every peer (and the other nodes); the version it took once durable, or
        None if it changed nothing (nothing is logged). MalformedMessage, MessageTooLarge as for
        a socket's update; RoomUnavailable if the room failed before the append was confirmed
        (it may or may not be in the log: read the log to know)."""
        limit = self._config.max_message_bytes
        if len(update) > limit:
            # as a socket's update: the log takes no larger one, and one it refused after the
            # room applied it would drop the room
            raise MessageTooLarge(
                f"the edit is {len(update)} bytes; an update may be at most {limit} bytes"
                " (JACAMENO_COLLAB_MAX_MESSAGE_BYTES)"
            )
        return await self._write([update], actor)

    async def _write(self, parts: Sequence[bytes], actor: Actor) -> int | None:
        """Write `parts` (one edit's updates, in order) as `write` does one, the room's sockets
        served between them; the version the last took (None: none changed anything). Several
        parts' events carry `part` and `parts` in the actor's context."""
        summaries = [await checked(part, self._config.offload_bytes) for part in parts]
        self._check_open()
        self.writer.check_growth(sum(len(part) for part in parts))
        written: list[asyncio.Future[int]] = []
        try:
            for n, (part, summary) in enumerate(zip(parts, summaries, strict=True), 1):
                if n > 1:
                    await asyncio.sleep(0)
                    self._check_open()
                if self.writer.depths.must_wait(summary):
                    await self.writer.depths.wait()
                    self._check_open()
                context = actor.context
                if len(parts) > 1:
                    context = {**context, "part": n, "parts": len(parts)}
                done = self._submit(part, summary, Actor(actor.user_id, actor.via, context))
                if done is not None:
                    written.append(done)
        except BaseException:
            for done in written:  # the parts before are logged or abandoned: nobody awaits them
                done.add_done_callback(_retrieved)
            raise
        versions = await asyncio.gather(*written)
        return versions[-1] if versions else None

    def _submit(
        self, update: bytes, summary: UpdateSummary, actor: Actor
    ) -> asyncio.Future[int] | None:
        """Apply a server-side update and queue it for the log as `actor`'s; the future of the
        version it takes, or None if it changed nothing."""
        if summary.empty or not self._apply(update, summary, f"server/{actor.via}"):
            return None
        event = events.doc_updated(
            update,
            summary,
            user_id=actor.user_id,
            node=self._node,
            via=actor.via,
            context=actor.context,
        )
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.writer.submit(event, update, None, done)
        return done

    def relog(self, writes: Sequence[Unlogged]) -> None:
        """Log again, each under its own author, updates a failed room of this project broadcast
        but did not log (jacameno.collab.unlogged), before any socket's: those the log holds
        by now change nothing and are dropped; the others are broadcast once committed, and
        their commits are `relogging`. One that no longer fits the document is dropped with a
        warning (the clients that hold it resend it)."""
        loop = asyncio.get_running_loop()
        for write in writes:
            try:
                summary = check_update(write.update)
                if not self._apply(write.update, summary, "server/relog", trusted=True):
                    continue
            except document.DocumentDamaged:
                return  # the room failed (and holds what it had taken up)
            except (MalformedMessage, MessageTooLarge) as exc:
                logger.warning(
                    "an unlogged update could not be logged again",
                    extra={
                        "action": "collab.relog_refused",
                        "project": self.project_id,
                        "error": repr(exc),
                    },
                )
                continue
            done: asyncio.Future[int] = loop.create_future()
            self.writer.submit(write.relogged(), write.update, None, done, hold=True)
            self.relogging.append(done)

    async def edit(self, change: Callable[[Doc[Any]], None], actor: Actor) -> int | None:
        """A server-side edit made by `change` on a copy of the current document (so that a
        change that raises leaves the room as it was); then as `write`. The copy is built and
        changed in a worker thread: for a large document that takes a while (a restore of a
        project of 100,000 updates builds 2.8 MB and compares its lyrics), and the room's
        other sockets are served meanwhile; what they change in between merges with it.

        An edit larger than an update may be (`max_message_bytes`), or deleting more than
        `DELETED_PER_UPDATE` clocks (4,000), is written as several updates (crdt.split), each logged
        and broadcast as any: the log, the bus and every client take no larger one, and yrs
        collects a part's deleted items on this event loop, so the room's other sockets are
        served between parts. If the room fails between parts, those before are in the log
        (the edit is partly made; making it again finishes it). MessageTooLarge if one struct
        of the edit alone is larger than an update may be."""
        self._check_open()
        state = self.doc.get_update()
        limit = self._config.max_message_bytes

        def changed() -> list[bytes]:
            scratch = document.build(state, [], gc=False)  # only computes the edit
            before = scratch.get_state()
            change(scratch)
            try:
                return split(scratch.get_update(before), limit, DELETED_PER_UPDATE, state)
            except CannotSplit as exc:
                raise MessageTooLarge(
                    f"the edit cannot be written as updates of at most {limit} bytes"
                    f" (JACAMENO_COLLAB_MAX_MESSAGE_BYTES): {exc}"
                ) from exc

        return await self._write(await asyncio.to_thread(changed), actor)

    def _apply(
        self,
        update: bytes,
        summary: UpdateSummary,
        origin: str,
        peer: Peer | None = None,
        *,
        trusted: bool = False,
    ) -> bool:
        try:
            return self.writer.apply(update, summary, origin, trusted=trusted)
        except document.DocumentDamaged:
            if peer is not None:
                peer.connection.close(MALFORMED, "update does not apply")
            logger.error(
                "update made pycrdt panic; room dropped",
                extra={"action": "collab.panic", "project": self.project_id, "peer": origin},
            )
            self.fail(TRY_AGAIN_LATER, "the room is reloading")
            raise

    # -- other messages from peers ----------------------------------------------------------------

    def answer_sync_step1(self, peer: Peer, state_vector: bytes) -> None:
        """Queue sync step 2: what the document has that `state_vector` lacks. TooManyRequests
        if the socket is over its budget of large answers."""
        self._check_open(peer)
        clocks = check_state_vector(state_vector)
        if peer.early_state is not None:  # it was sent the whole document as it joined
            state_vector = encode_state_vector(merged_state(clocks, peer.early_state))
            peer.early_state = None
        try:
            update = self.doc.get_update(state_vector)
        except ValueError as exc:
            raise MalformedMessage(f"state vector: {exc}") from exc
        peer.connection.sync_budget.charge(len(update))
        self.writer.defer(peer, Outgoing(Kind.SYNC_STEP2, update))

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
        self.broadcast(Outgoing(Kind.AWARENESS, payload))
        self.writer.publish_awareness(payload)

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

    # -- other nodes --------------------------------------------------------------------------

    def receive_committed(self, committed: Committed) -> None:
        """Another node's committed append: applied in version order by the writer task."""
        self.writer.receive_committed(committed)

    def follow_log(self) -> None:
        """Read (in the writer task) the log after `version`: messages may have been lost."""
        self.writer.follow_log()

    def receive_remote_awareness(self, payload: bytes) -> None:
        """An awareness update relayed by another node: kept and sent to this node's peers.
        MalformedMessage if it does not decode."""
        applied = self.awareness.apply(awareness.decode(payload))
        if applied.entries:
            self.broadcast(Outgoing(Kind.AWARENESS, awareness.encode(applied.entries)))

    # -- lifecycle ----------------------------------------------------------------------------

    def fail(self, code: int, reason: str) -> None:
        """Drop the room: close every socket with `code`; pending writes are abandoned (their
        senders are closed too, so they resync and resend; a server-side write gets
        RoomUnavailable)."""
        if self.failed:
            return
        self.failed = True
        for peer in list(self.peers.values()):
            peer.connection.close(code, reason)
            peer.stop()
            self._sessions.left(self.project_id, peer, code)
        self.peers.clear()
        self.unlogged = self.writer.abandon(RoomUnavailable(reason))
        self._on_failed(self)

    async def close(self) -> None:
        """Wait for pending writes and a running snapshot, then take a last snapshot if the log
        has updates after the latest one. The room must have no peers. After `drain_timeout`
        seconds, whatever is still under way is abandoned, with a warning."""
        try:
            async with asyncio.timeout(self._config.drain_timeout):
                await self.writer.drain()
        except TimeoutError:
            self._abandon()
        finally:
            self.writer.depths.cancel()  # a nesting still being built is of no use any more

    def _abandon(self) -> None:
        # Nothing acknowledged is lost: updates are acknowledged only once committed, and their
        # senders resend them on reconnect (sync step 2). One under way may commit: harmless.
        self.failed = True
        under_way = self.writer.cancel()
        self.writer.abandon(RoomUnavailable("the room closed before the update was logged"))
        logger.warning(
            "room closed with writes under way; they are abandoned",
            extra={
                "action": "collab.drain_abandoned",
                "project": self.project_id,
                "seconds": self._config.drain_timeout,
                **under_way,
            },
        )

    @property
    def snapshots(self) -> int:
        """Snapshots this room saved."""
        return self.writer.snapshots.saved

    @property
    def busy(self) -> bool:
        return self.writer.busy

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self, peer: Peer | None = None) -> None:
        """RoomUnavailable if the room failed; a revoked `peer`'s revocation (an AdmissionError:
        whatever it sent after it was revoked is refused)."""
        if self.failed:
            raise RoomUnavailable("the room is reloading")
        if peer is not None and peer.revoked is not None:
            raise peer.revoked


def _retrieved(future: asyncio.Future[int]) -> None:
    """Mark a future's outcome as seen (asyncio logs an exception nobody retrieved)."""
    if not future.cancelled():
        future.exception()
