"""What a room talks to: peers (one socket's membership in one room), each speaking a dialect.

A room encodes each outgoing message at most once per dialect (`Outgoing.frame`), and frames it
for WebSocket at most once (jacameno.collab.wire), never once per receiver. The y-websocket
dialect frames messages as they are; the Hocuspocus dialect prefixes them with the document
name, so it is one object per document name."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from typing import Protocol

from jacameno.collab.connection import Connection
from jacameno.collab.errors import AdmissionError
from jacameno.collab.gatekeeper import Access
from jacameno.collab.wire import Frame


class Kind(enum.Enum):
    SYNC_STEP1 = "sync_step1"
    SYNC_STEP2 = "sync_step2"
    UPDATE = "update"
    AWARENESS = "awareness"
    STATELESS = "stateless"  # payload: UTF-8 text (Hocuspocus only)
    PERMISSION_DENIED = "permission_denied"  # payload: UTF-8 reason
    ROLE = "role"  # payload: the peer's new role, after a role change (Hocuspocus: its scope)
    TOKEN_REQUEST = "token_request"  # ask for a fresh access token (Hocuspocus only); no payload


class Dialect(Protocol):
    """Turns a room's messages into frames of one wire protocol."""

    @property
    def key(self) -> str:
        """Equal for dialect objects that encode identically (the cache key of `Outgoing`)."""
        ...

    @property
    def echoes(self) -> bool:
        """Whether the sender of an update gets it back (y-websocket: the echo is the
        acknowledgement; Hocuspocus acknowledges with SyncStatus instead)."""
        ...

    @property
    def early_sync(self) -> bool:
        """Whether a newcomer is sent the whole document before it asks (jacameno.collab.room,
        `join`): its clients take a sync step 2 they did not ask for as being synced."""
        ...

    def encode(self, kind: Kind, payload: bytes) -> bytes | None:
        """The frame of a message, or None if the dialect has no such message."""
        ...

    def acknowledgement(self, applied: bool) -> bytes | None:
        """The frame telling a sender its update is durable (or was refused), if any."""
        ...

    def revoke(self, connection: Connection, error: AdmissionError) -> None:
        """Tell the socket it lost its access to the room, as its clients understand it."""
        ...


class Outgoing:
    """One message of a room, encoded lazily and at most once per dialect."""

    __slots__ = ("_frames", "kind", "payload")

    def __init__(self, kind: Kind, payload: bytes) -> None:
        self.kind = kind
        self.payload = payload
        self._frames: dict[str, Frame | None] = {}

    def frame(self, dialect: Dialect) -> Frame | None:
        key = dialect.key
        try:
            return self._frames[key]
        except KeyError:
            encoded = dialect.encode(self.kind, self.payload)
            frame = self._frames[key] = None if encoded is None else Frame(encoded)
            return frame


class Peer:
    """One socket in one room. (A y-websocket socket is in exactly one room; a Hocuspocus socket
    may multiplex several documents, one Peer each, sharing one Connection.)"""

    __slots__ = (
        "access",
        "awareness_clients",
        "connection",
        "dialect",
        "early_state",
        "expiry",
        "id",
        "joined_at",
        "joining",
        "recalled",
        "renewal_asked",
        "revoked",
    )

    def __init__(
        self,
        connection: Connection,
        dialect: Dialect,
        access: Access,
        joined_at: float,
        peer_id: str | None = None,
        joining: tuple[float, Callable[[float], None]] | None = None,
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.access = access
        self.joined_at = joined_at
        self.awareness_clients: set[int] = set()
        self.id = peer_id or connection.id  # unique within a room
        self.revoked: AdmissionError | None = None  # set when a membership change revoked it
        self.expiry: asyncio.TimerHandle | None = None  # revokes the peer when its token expires
        # the expiry of the token a renewal was last asked for: each token is asked about once
        self.renewal_asked: float | None = None
        # the state (client -> clock) of the whole document sent before the peer asked: its
        # first sync step 1 is answered with what it lacks beyond that
        self.early_state: dict[int, int] | None = None
        # until its first sync step 2 is handed over: when its way in reached the server
        # (`time.perf_counter()`), and whom to tell how long the sync took
        self.joining = joining
        # on-receipt mode: whether the room read the ledger of early broadcasts for an update of
        # this socket (jacameno.collab.recovered): once, before its first new structs
        self.recalled = False

    def stop(self) -> None:
        """The peer left its room: cancel its timers."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    @property
    def close_code(self) -> int | None:
        """Why the peer left its room: its revocation's code, else its socket's close code."""
        return self.revoked.close_code if self.revoked is not None else self.connection.close_code

    def deliver(self, message: Outgoing) -> None:
        frame = message.frame(self.dialect)
        if frame is not None:
            bulk = message.kind is Kind.SYNC_STEP2
            self.connection.send_frame(frame, bulk=bulk)
            if bulk and self.joining is not None:
                since, synced = self.joining
                self.joining = None
                self.connection.flush()
                synced(time.perf_counter() - since)

    def acknowledge(self, applied: bool = True) -> None:
        """Tell the peer its update is durable (or, `applied=False`, refused)."""
        frame = self.dialect.acknowledgement(applied)
        if frame is not None:
            self.connection.send(frame)
