"""Limits and timings of live collaboration: the `collab` section of the settings, read with
them (jacameno.settings) from `JACAMENO_COLLAB_*` variables.

The limits must agree with each other and with the event store, so that whatever a socket may
send can be stored and served back: a combination that contradicts itself is a SettingsError at
start (`check`), never a room that fails later (docs/security.md, "Documents and sync")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from eventstore import Limits
from jacameno.settings.errors import SettingsError
from jacameno.settings.section import positive_numbers

MIB = 1024 * 1024
# When the other sockets of a room see a writer's update (docs/collaboration.md, "Broadcast
# modes"): once it is durable, or as soon as the room's document applied it. The sender's
# acknowledgement and other nodes wait for the commit in both.
AFTER_COMMIT = "after-commit"
ON_RECEIPT = "on-receipt"
BROADCAST_MODES = (AFTER_COMMIT, ON_RECEIPT)
MAX_TYPE_DEPTH = 250  # the highest max_type_depth (depths are kept in one byte)


@dataclass(frozen=True, slots=True)
class CollabConfig:
    max_message_bytes: int = 4 * MIB  # one frame; larger closes with 1009
    max_document_bytes: int = 64 * MIB  # encoded size of a project document; over it: 1009
    outbound_messages: int = 2048  # frames queued for one socket; over it the socket gets 1013
    # bytes a socket may leave unread (queued or in the kernel), sync answers aside; over: 1013
    outbound_bytes: int = 16 * MIB
    # Sync step 2 answers (a newcomer's whole document) do not count toward outbound_bytes, so a
    # large document is never taken for a slow socket; a socket holds at most this many unread.
    sync_answers_unread: int = 2
    # Per socket, at most `large_syncs` sync answers of `large_sync_bytes` or more (a burst,
    # refilled over `large_sync_window` seconds); one more closes the socket with 4429. A
    # document smaller than `large_sync_bytes` is sent whole to a y-websocket newcomer as it
    # joins, before it asks (jacameno.collab.room, `join`).
    large_syncs: int = 10
    large_sync_bytes: int = 64 * 1024
    large_sync_window: float = 60.0
    # Shared types nested deeper than this (root types are at depth 1) are refused with 4400.
    max_type_depth: int = 64
    idle_timeout: float = 120.0  # seconds without any frame from the client (they renew awareness
    # every 15 s); protocol-level pings are uvicorn's (ws_ping_interval)
    close_timeout: float = 10.0  # how long a close may wait behind a socket that does not read
    unload_delay: float = 30.0  # seconds a room stays loaded after its last socket left
    # how long closing a room (unload, shutdown) waits for its writes and last snapshot; then
    # they are abandoned, so a hung database cannot hang the server's shutdown
    drain_timeout: float = 10.0
    snapshot_every_updates: int = 1000
    # each room's snapshot point varies by this fraction, so rooms do not all fold at once
    snapshot_jitter: float = 0.25
    snapshot_every_bytes: int = 4 * MIB
    # seconds a room's write to the log (or catch-up read) may take; then the log counts as
    # unavailable: the room fails (1013) so that its clients move to a node that can write
    append_timeout: float = 5.0
    max_pending_writes: int = 2000  # per room; the sockets' reads wait while more are unlogged
    awareness_clients_per_socket: int = 16
    # Room guards (docs/security.md, "Collaboration rooms"). An awareness state over this, or
    # beyond the room's total, is dropped (the total is also held under half of
    # `outbound_bytes`, so a newcomer can always be sent them all).
    awareness_state_bytes: int = 64 * 1024
    awareness_room_bytes: int = 4 * MIB
    # Clocks of removed awareness clients are kept this long (y-protocols' outdated timeout),
    # and for at most this many clients per room.
    awareness_removed_ttl: float = 30.0
    awareness_removed_kept: int = 10_000
    # Sockets (Hocuspocus: documents) one user may have in one project on one node; one more is
    # refused with 4429.
    sockets_per_user: int = 32
    # Sessions per user and project logged per minute on one node (a bucket of this size);
    # sessions beyond it are served but not logged (neither joined nor left).
    sessions_logged_per_minute: int = 60
    # A Hocuspocus document is asked for a fresh token this many seconds before its token
    # expires (the provider answers with its `token` option, a function for a fresh one).
    token_renewal_ahead: float = 30.0
    offload_bytes: int = 16 * 1024  # updates larger than this are checked in a worker thread
    # Membership changes are found by following the log; while it is busy, reads are spaced this
    # many seconds apart (a command waiting for a change skips the wait).
    follow_interval: float = 0.05
    # Several nodes (a Redis bus): each loaded room reads the tail of its stream this often, in
    # case messages were lost on the bus; and reconnections to Redis back off up to this.
    log_check_interval: float = 5.0
    bus_max_backoff: float = 5.0
    # /hocuspocus before authentication (jacameno.collab.lobby, docs/security.md): the longest
    # document name (over it: 4400), documents authenticated on one socket (more: permission
    # denied), seconds a socket may go without an authenticated document (then 4401), and
    # sockets of this node waiting to authenticate (more: 1013).
    max_document_name_bytes: int = 256
    max_documents_per_socket: int = 64
    auth_timeout: float = 10.0
    max_unauthenticated_sockets: int = 1000
    # Seconds a read of a user, or of a project's members, lets later joins in without reading
    # again (jacameno.collab.gatekeeper): what takes access away applies at once all the same;
    # this bounds how long a node whose membership follower stalled admits on an older read.
    admission_trusted_seconds: float = 10.0
    broadcast: str = AFTER_COMMIT  # one of BROADCAST_MODES (JACAMENO_COLLAB_BROADCAST)
    # How long a node keeps trying to log, under their authors, the updates a failed room had
    # broadcast on receipt but not logged (jacameno.collab.unlogged); then they are dropped
    # (the clients that hold them resend them).
    relog_seconds: float = 300.0
    # How long what a node sent early (on-receipt mode) is remembered where it outlives the node
    # (jacameno.collab.ledger): an edit a client brings back after the node's death within this
    # time is logged under the user who made it, later under the client's.
    early_records_seconds: float = 3600.0

    @property
    def early_broadcast(self) -> bool:
        """Whether a writer's update reaches the room's other sockets before it is durable."""
        return self.broadcast == ON_RECEIPT

    @classmethod
    def read(cls, get: Callable[[str], str | None]) -> CollabConfig:
        """The limits that `get` (a `JACAMENO_` variable by the rest of its name, None if unset
        or empty) gives, the defaults for the others; SettingsError for a value that is not a
        positive number or contradicts another."""
        mode = get("COLLAB_BROADCAST")
        values = positive_numbers(
            cls, "COLLAB", lambda name: None if name == "COLLAB_BROADCAST" else get(name)
        )
        if mode is not None:
            values["broadcast"] = mode.strip().lower()
        return cls(**values)

    def __post_init__(self) -> None:
        self.check()

    def check(self, store: Limits | None = None) -> None:
        """SettingsError if the limits contradict each other or the event store's (`store`, by
        default the limits the server opens its store with)."""
        store = store or Limits()
        if self.broadcast not in BROADCAST_MODES:
            raise SettingsError(
                f"JACAMENO_COLLAB_BROADCAST ({self.broadcast!r}) must be one of "
                + ", ".join(BROADCAST_MODES)
            )
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str):
                continue
            if value < 0 or (value == 0 and field.name != "snapshot_jitter"):
                raise SettingsError(f"{_name(field.name)} must be > 0")
        _at_least(
            "outbound_bytes",
            self.outbound_bytes,
            2 * self.max_message_bytes,
            "twice JACAMENO_COLLAB_MAX_MESSAGE_BYTES, or one broadcast update of the largest "
            "size would close every socket of its room as too slow",
        )
        _at_least(
            "max_document_bytes",
            self.max_document_bytes,
            self.max_message_bytes,
            "JACAMENO_COLLAB_MAX_MESSAGE_BYTES: an update may be as large as a message",
        )
        _at_most(
            "max_message_bytes",
            self.max_message_bytes,
            store.max_event_bytes,
            "the event store's largest event, or an accepted update would fail its append "
            "and drop the room",
        )
        _at_most(
            "max_document_bytes",
            self.max_document_bytes,
            store.max_snapshot_bytes,
            "the event store's largest snapshot, or the document could not be snapshotted",
        )
        _at_most("max_type_depth", self.max_type_depth, MAX_TYPE_DEPTH, "the highest supported")


def _name(field: str) -> str:
    return f"JACAMENO_COLLAB_{field.upper()}"


def _at_least(field: str, value: float, bound: float, why: str) -> None:
    if value < bound:
        raise SettingsError(f"{_name(field)} ({value}) must be at least {bound}: {why}")


def _at_most(field: str, value: float, bound: float, why: str) -> None:
    if value > bound:
        raise SettingsError(f"{_name(field)} ({value}) must be at most {bound}: {why}")
