"""A room's single writer: its document, the updates applied to it that are not yet durable, and
the one task that appends them to the log and moves the room's version.

The durability rule, and how the writer keeps it while writing in batches:

1. An update is checked (`crdt.update.check_update`), then applied to the document inside a
   transaction (`apply`). Applying is the last validation: pycrdt refusing or panicking means the
   update is never appended. The document now holds state that is not yet durable, so nothing
   the document says may leave the room until that state has committed.
2. The update joins the pending writes (`submit`); the writer task appends everything pending
   as one append (the store group-commits appends of all rooms), then broadcasts each committed
   update to the room's peers, the sender included (its echo is its acknowledgement), and a
   server-side write's caller learns the version it took. The one exception is the on-receipt
   broadcast mode (`JACAMENO_COLLAB_BROADCAST`): the room has already sent a socket's update to
   its other sockets (`early`), and after the commit only the sender's echo is left; the
   sender's acknowledgement and other nodes still wait for the commit.
3. Everything else read from the document (sync step 1 and step 2 answers, snapshots) is
   computed when asked but released only once every update applied before it has committed
   (`defer`).
4. If an append fails or outlasts `append_timeout`, the document may hold updates not in the
   log: the room fails (its sockets get 1013, or 1011 if the log refused the update's content or
   the writer failed in any other way), and the next joiner loads the room from the log.

With several nodes, committed batches go to a `Publisher` (jacameno.collab.relay), and other
nodes' appends are applied by the writer task in version order (`receive_committed`)."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from crdt import document
from crdt.document import EMPTY_UPDATE
from crdt.update import UpdateSummary, check_update
from domain import events
from eventstore import EventStore, EventStoreError, InvalidEventError, NewEvent
from jacameno.collab.clocks import ClockBound
from jacameno.collab.depths import Depths
from jacameno.collab.errors import (
    INTERNAL_ERROR,
    TRY_AGAIN_LATER,
    MalformedMessage,
    MessageTooLarge,
    RoomUnavailable,
)
from jacameno.collab.loading import Loaded
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.snapshots import Snapshots
from jacameno.collab.timings import Timings
from jacameno.collab.unlogged import Unlogged
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)

# On-receipt sends wait for the append under way once this many writes wait behind it
# (`Writer.send_early`): a room that busy sends in batches, one write per socket per commit.
EARLY_BATCH = 8
# ... but never longer than this (seconds), or `HOLD_FACTOR` times the median of the room's last
# `RECENT_APPENDS` appends if that is longer: a commit stalled on the disk's tail (hundreds of
# milliseconds at times) must not hold them, which is what on-receipt mode is for; a commit
# merely as slow as the room's others (a node near its capacity, where they all take tens of
# milliseconds) must, or the room is sent to once per `EARLY_HOLD` on top of once per commit,
# which kept a room at capacity busier still.
EARLY_HOLD = 0.02
HOLD_FACTOR = 2.0
RECENT_APPENDS = 16  # a median: one stalled append among them does not lengthen the hold


@dataclass(frozen=True, slots=True)
class Committed:
    """One committed append of a room: versions `first`..`last` of its stream, and the document
    updates among those events, in version order."""

    first: int
    last: int
    updates: Sequence[bytes]


class Publisher(Protocol):
    """Where a room tells the other nodes what it committed and its awareness (the relay)."""

    def publish_committed(self, project_id: str, committed: Committed) -> None: ...

    def publish_awareness(self, project_id: str, payload: bytes) -> None: ...


class Audience(Protocol):
    """What the writer needs of its room."""

    @property
    def failed(self) -> bool: ...

    def broadcast(self, message: Outgoing, sender: Peer | None = None) -> None:
        """Send to every peer (not to `sender` unless its dialect echoes)."""
        ...

    def present(self, peer: Peer) -> bool:
        """Whether `peer` is still in the room."""
        ...

    def fail(self, code: int, reason: str) -> None: ...


@dataclass(slots=True)
class _Write:
    event: NewEvent  # doc.updated
    update: bytes
    sender: Peer | None  # None: a server-side write, whose caller waits on `done`
    seq: int  # the count of applied updates after this one
    done: asyncio.Future[int] | None  # the version the update took
    # already sent to the room's other sockets (on-receipt mode): after the commit only the
    # sender's echo is left to send
    early: bool = False
    # kept by the node if the room fails before it is logged (jacameno.collab.unlogged): an
    # early-broadcast update, or one such update being logged again
    hold: bool = False
    # time.perf_counter() when the socket's frame reached the server (0: not a socket's, or
    # not timed)
    received: float = 0.0


async def checked(update: bytes, offload_bytes: int) -> UpdateSummary:
    """`check_update`, in a worker thread for updates over `offload_bytes` (a large sync step 2
    would otherwise hold the event loop)."""
    if len(update) > offload_bytes:
        return await asyncio.to_thread(check_update, update)
    return check_update(update)


class Writer:
    def __init__(
        self,
        project_id: str,
        store: EventStore,
        loaded: Loaded,
        config: CollabConfig,
        node: str,
        audience: Audience,
        folds: asyncio.Semaphore,
        publisher: Publisher | None,
        timings: Timings | None = None,
    ) -> None:
        self.project_id = project_id
        self._timings = timings or Timings()
        self.stream = events.stream_name(project_id)
        self.store = store
        self.doc = loaded.doc
        self.version = loaded.version
        self._clocks = ClockBound(self.doc.get_state())
        self.depths = Depths(loaded.nesting, loaded.state, self._nesting_failed, project_id)
        self._config = config
        self._node = node
        self._room = audience
        self.publisher = publisher
        self._pending: list[_Write] = []
        self._appending: list[_Write] = []  # the append under way
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._applied = 0
        self._committed = 0
        self._unlogged_bytes = 0
        self._inbound: list[Committed] = []  # other nodes' appends, for the writer task
        self._stale = False  # the writer task must read the log after `version`
        self._deferred: deque[tuple[int, Peer, Outgoing | None]] = deque()  # None: acknowledge
        # On-receipt sends held while the room is crowded (`send_early`): each with the sockets
        # it was for, released when the append under way has committed, or `EARLY_HOLD` after
        # the first of them was held if that comes first.
        self._held: list[tuple[Outgoing, list[Peer]]] = []
        self._hold_timer: asyncio.TimerHandle | None = None  # releases them after the hold
        self._recent_appends: deque[float] = deque(maxlen=RECENT_APPENDS)  # seconds each took
        self.snapshots = Snapshots(
            store, self.stream, config, node, loaded.base, loaded.tail, folds, lambda: self.version
        )

    @property
    def busy(self) -> bool:
        return self._task is not None

    # -- writes -------------------------------------------------------------------------------

    def apply(
        self, update: bytes, summary: UpdateSummary, origin: str, *, trusted: bool = False
    ) -> bool:
        """Apply a checked, non-empty update to the document; False if it changed nothing (it is
        then not to be logged). MessageTooLarge if the document would grow over its limit,
        MalformedMessage if it nests types too deep or does not apply (DocumentDamaged if pycrdt
        panicked: the document must be dropped). An update that `depths.must_wait` for is
        applied only after `depths.wait()`, unless `trusted` (checked when it was first
        received: relogged)."""
        self.check_growth(len(update))
        placed = None if trusted else self.depths.check(summary, self._config.max_type_depth)
        known = self._clocks.covers(summary)
        changes: list[bytes] = []
        if known:
            # A provider's sync step 2 repeats its whole delete set on every reconnect: when
            # the update names only clocks the document has, its transaction tells whether it
            # changed anything, and a no-op is not logged.
            subscription = self.doc.observe(lambda event: changes.append(event.update))
        try:
            document.apply(self.doc, update, origin)
        finally:
            if known:
                self.doc.unobserve(subscription)
        self._clocks.advance(summary)
        self.depths.record_resolved(placed, summary)
        return not (known and all(change == EMPTY_UPDATE for change in changes))

    def covers(self, summary: UpdateSummary) -> bool:
        """Whether the document may already hold every clock the update names (one that does
        not is certainly new: `ClockBound.covers`)."""
        return self._clocks.covers(summary)

    def check_growth(self, size: int) -> None:
        """MessageTooLarge if updates of `size` bytes more could take the document over its
        limit (an upper bound of the encoded document: the last snapshot plus every update
        since)."""
        if self.snapshots.size + self._unlogged_bytes + size > self._config.max_document_bytes:
            raise MessageTooLarge("the document would exceed its maximum size")

    def submit(
        self,
        event: NewEvent,
        update: bytes,
        sender: Peer | None,
        done: asyncio.Future[int] | None = None,
        *,
        early: bool = False,
        hold: bool = False,
        received: float = 0.0,
    ) -> None:
        """Queue an applied update for the log; `early`: the room's other sockets already have
        it (on-receipt mode), so once committed it goes only to its sender; `hold` (implied by
        `early`): if the room fails first, `abandon` returns it for the node to log;
        `received`: when the sender's frame reached the server (`time.perf_counter()`), to time
        its acknowledgement (jacameno.collab.timings)."""
        self._applied += 1
        self._unlogged_bytes += len(update)
        write = _Write(event, update, sender, self._applied, done, early, hold or early, received)
        self._pending.append(write)
        self._wake()

    def send_early(self, message: Outgoing, receivers: list[Peer]) -> None:
        """On-receipt mode: send an update to `receivers` (the room's other sockets) before it
        is durable. At once while the room is calm; while it is crowded (an append under way
        and `EARLY_BATCH` or more writes waiting behind it, this one included) the send waits
        for that append to commit and goes out with that commit's echoes, in one write per
        socket, as after-commit mode's sends do: near a node's capacity one write per socket
        per turn costs more than sending early gains (docs/collaboration.md, "Broadcast
        modes"). A held send still goes out before the update's own commit, which is in the
        writes behind that append, and at most `early_hold()` after the first was held: a
        commit stalled on the disk holds the room's sends no longer than that."""
        if self._appending and len(self._pending) >= EARLY_BATCH:
            self._held.append((message, receivers))
            if self._hold_timer is None:
                loop = asyncio.get_running_loop()
                self._hold_timer = loop.call_later(self.early_hold(), self._release_held)
            return
        for receiver in receivers:
            receiver.deliver(message)

    def early_hold(self) -> float:
        """The longest a crowded room holds its early sends (seconds): `EARLY_HOLD`, or
        `HOLD_FACTOR` times the median of its last `RECENT_APPENDS` appends if longer."""
        if not self._recent_appends:
            return EARLY_HOLD
        return max(EARLY_HOLD, HOLD_FACTOR * statistics.median(self._recent_appends))

    def _release_held(self) -> None:
        self._stop_hold_timer()
        held, self._held = self._held, []
        room = self._room
        for message, receivers in held:
            for receiver in receivers:
                if room.present(receiver):
                    receiver.deliver(message)

    def _stop_hold_timer(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    async def backpressure(self) -> None:
        """Wait while the room has `max_pending_writes` or more unlogged writes."""
        while len(self._pending) >= self._config.max_pending_writes and not self._room.failed:
            self._progress.clear()
            await self._progress.wait()

    @property
    def generation(self) -> tuple[int, int]:
        """Changes whenever the document may have: the version and the updates applied here."""
        return self.version, self._applied

    def defer(self, peer: Peer, message: Outgoing | None) -> None:
        """Send `message` (None: an acknowledgement) once every update applied so far has
        committed."""
        if self._committed < self._applied:
            self._deferred.append((self._applied, peer, message))
        elif message is None:
            peer.acknowledge()
        else:
            peer.deliver(message)

    # -- other nodes --------------------------------------------------------------------------

    def receive_committed(self, committed: Committed) -> None:
        """Another node's (or the session log's) committed append, applied in version order."""
        self._inbound.append(committed)
        self._wake()

    def follow_log(self) -> None:
        """Read (in the writer task) the log after `version`: messages may have been lost."""
        self._stale = True
        self._wake()

    def publish_awareness(self, payload: bytes) -> None:
        if self.publisher is not None:
            self.publisher.publish_awareness(self.project_id, payload)

    # -- lifecycle ----------------------------------------------------------------------------

    def abandon(self, error: RoomUnavailable) -> list[Unlogged]:
        """The room failed or closed: drop what is pending (its senders resend it after they
        reconnect); a server-side write still waiting gets `error`. The updates to hold (those
        other sockets already have) are returned, in the order they were applied."""
        held = []
        for write in (*self._appending, *self._pending):
            if write.done is not None and not write.done.done():
                write.done.set_exception(error)
            if write.hold:
                held.append(Unlogged(write.event, write.update))
        self._appending = []
        self._pending.clear()
        self._deferred.clear()
        self._held.clear()  # never sent: their senders and the log are as if never received
        self._stop_hold_timer()
        self._progress.set()
        return held

    async def drain(self) -> None:
        """Wait for pending writes and a running snapshot, then take a last snapshot if the log
        has updates after the latest one."""
        while self._task is not None:
            await asyncio.shield(self._task)
        await self.snapshots.settled()
        if self.snapshots.behind and not self._room.failed:
            self.snapshots.start()
            await self.snapshots.settled()

    def cancel(self) -> dict[str, int | bool]:
        """Cancel what is under way (after `abandon`); what was cancelled, for a log line."""
        under_way: dict[str, int | bool] = {
            "updates": self._applied - self._committed,
            "events": len(self._appending) + len(self._pending),
            "snapshot": self.snapshots.running is not None,
        }
        for task in (self._task, self.snapshots.running):
            if task is not None:
                task.cancel()
        self.depths.cancel()
        return under_way

    def _nesting_failed(self, error: BaseException) -> None:
        self._room.fail(TRY_AGAIN_LATER, "the room is reloading")

    # -- the writer task ----------------------------------------------------------------------

    def _wake(self) -> None:
        if self._task is None and not self._room.failed:
            self._task = asyncio.create_task(self._run(), name=f"room-{self.project_id}")

    async def _run(self) -> None:
        # The one task that moves `version`: appends, catch-ups and other nodes' messages.
        try:
            while (self._pending or self._inbound or self._stale) and not self._room.failed:
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
                    self._room.fail(INTERNAL_ERROR, "the log refused an update")
                    return
                except (EventStoreError, TimeoutError) as exc:  # a silent log is unavailable
                    self._drop(exc, "append failed", "collab.append_failed")
                    self._room.fail(TRY_AGAIN_LATER, "the log is unavailable")
                    return
                except MalformedMessage as exc:
                    self._drop(
                        exc, "the log holds an update that does not apply", "collab.poisoned_log"
                    )
                    self._room.fail(INTERNAL_ERROR, "the document cannot be loaded")
                    return
                except Exception:  # a bug: a batch may be logged yet never broadcast
                    extra = {"action": "collab.writer_crashed", "project": self.project_id}
                    logger.exception("the room's writer crashed; room dropped", extra=extra)
                    self._room.fail(INTERNAL_ERROR, "internal error")
                    return
        finally:
            self._task = None
            self._appending = []

    def _drop(self, exc: Exception, message: str, action: str) -> None:
        extra = {"action": action, "project": self.project_id, "error": repr(exc)}
        if isinstance(exc, EventStoreError | TimeoutError) and not isinstance(
            exc, InvalidEventError
        ):
            logger.warning("%s; room dropped", message, extra=extra)
        else:
            logger.error(message, extra=extra)

    async def _append_pending(self) -> None:
        batch, self._pending = self._pending, []
        self._appending = batch
        self._progress.set()
        started = time.perf_counter()
        result = await self.store.append(self.stream, [w.event for w in batch])
        took = time.perf_counter() - started
        self._timings.appended(took)
        self._recent_appends.append(took)
        if result.first_version != self.version + 1:
            await self._catch_up(result.first_version - 1)
        self.version = result.last_version
        self._committed_batch(batch, result.first_version)
        self._appending = []
        if self.publisher is not None:
            updates = [w.update for w in batch]
            committed = Committed(result.first_version, result.last_version, updates)
            self.publisher.publish_committed(self.project_id, committed)

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
        missing = await self.store.read_stream(self.stream, self.version + 1, to_version)
        self._apply_others([e.data for e in missing if e.type == events.DOC_UPDATED])
        if missing:
            self.version = missing[-1].version

    def _apply_others(self, updates: Iterable[bytes]) -> None:
        """Updates other writers logged; MalformedMessage if one does not apply."""
        for update in updates:
            summary = check_update(update, logged=True)
            document.apply(self.doc, update, "log")
            self._clocks.advance(summary)
            self.depths.record(summary)
            self.snapshots.record(update)
            self._room.broadcast(Outgoing(Kind.UPDATE, update))

    def _committed_batch(self, batch: list[_Write], first_version: int) -> None:
        room = self._room
        acknowledged = self._timings.acknowledged
        for version, write in enumerate(batch, first_version):
            sender = write.sender
            if not write.early:
                room.broadcast(Outgoing(Kind.UPDATE, write.update), sender)
            if sender is not None and room.present(sender):
                if write.early and sender.dialect.echoes:
                    sender.deliver(Outgoing(Kind.UPDATE, write.update))
                sender.acknowledge()
                if write.received:
                    acknowledged(time.perf_counter() - write.received)
            if write.done is not None and not write.done.done():
                write.done.set_result(version)
            self.snapshots.record(write.update)
            self._unlogged_bytes -= len(write.update)
            self._committed = write.seq
        self._release_held()  # held while this batch was under way: before their own commit
        while self._deferred and self._deferred[0][0] <= self._committed:
            _, peer, message = self._deferred.popleft()
            if room.present(peer):
                if message is None:
                    peer.acknowledge()
                else:
                    peer.deliver(message)
        if self.snapshots.due():
            self.snapshots.start()
