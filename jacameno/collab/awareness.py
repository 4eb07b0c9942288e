"""Awareness (y-protocols/awareness): who is online, cursors, selections. Relayed, never logged.

An awareness update is varuint(#entries) { varuint(client id) varuint(clock) varstring(state as
JSON, "null" when the client is gone) }. The room keeps the latest state of every client, to send
to sockets that join, and remembers which socket introduced which client ids: when a socket
drops, its clients are removed and everyone is told.

Bounds (the settings are in jacameno.settings.collab; docs/security.md says what clients see):
- a state larger than `max_state_bytes`, or a new or grown state that would take the room's
  states over `max_total_bytes`, is dropped: not kept, not relayed, and the socket stays
  (y-protocols clients handle no awareness error, and a close would only make them reconnect
  and send it again; editing goes on, the presence is not shown). What a newcomer is sent
  stays bounded;
- a client id belongs to the socket that introduced it until that socket removes it or leaves
  (an id another node relayed belongs to that node until it relays its removal): entries
  another socket sends for it are dropped, so nobody can overwrite or remove another client's
  presence;
- the clock of a removed client is kept for `removed_ttl` seconds (y-protocols' outdated
  timeout: by then every client has dropped that state too) and for at most `max_removed`
  clients, so that memory stays bounded however many ids come and go. A client that returns
  after its clock was forgotten is accepted with any clock; one that returns sooner is accepted
  with a newer clock, as y-protocols says (its provider renews its state every 15 s)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crdt.encoding import Reader, write_var_string, write_var_uint
from crdt.update import check_json


@dataclass(frozen=True, slots=True)
class Entry:
    client: int
    clock: int
    state: str  # JSON text; "null" means removed


def decode(payload: bytes) -> list[Entry]:
    """The entries of an awareness update; MalformedMessage if it does not decode strictly."""
    reader = Reader(payload, "awareness")
    count = reader.var_uint()
    if count * 3 > reader.remaining:
        raise reader.fail(f"{count} entries announced, {reader.remaining} bytes left")
    entries = []
    for _ in range(count):
        client = reader.var_uint()
        clock = reader.var_uint()
        state = reader.var_string()
        check_json(state, "awareness state")
        entries.append(Entry(client, clock, state))
    reader.end()
    return entries


def encode(entries: list[Entry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts += (write_var_uint(entry.client), write_var_uint(entry.clock))
        parts.append(write_var_string(entry.state))
    return b"".join(parts)


@dataclass(slots=True)
class Applied:
    """What `AwarenessStates.apply` kept: the entries to relay, and the client ids now present
    and removed; `dropped` counts entries left out (another socket's client, a state too large,
    the room full)."""

    entries: list[Entry] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    dropped: int = 0


REMOTE = "\0remote"  # the owner of client ids another node's sockets introduced


class AwarenessStates:
    """The latest awareness state of each client of one room, with y-protocols' rule: an entry
    wins if its clock is newer, or equal and it removes the client. Bounded as the module says."""

    def __init__(
        self,
        *,
        max_state_bytes: int,
        max_total_bytes: int,
        removed_ttl: float = 30.0,
        max_removed: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_state_bytes = max_state_bytes
        self._max_total_bytes = max_total_bytes
        self._removed_ttl = removed_ttl
        self._max_removed = max_removed
        self._now = clock
        self._clocks: dict[int, int] = {}  # present clients
        self._states: dict[int, str] = {}
        self._sizes: dict[int, int] = {}
        self._owners: dict[int, str] = {}  # client id -> the peer that introduced it
        self._removed: dict[int, tuple[int, float]] = {}  # clock, when; oldest first
        self._total = 0
        self._encoded: bytes | None = None

    def apply(self, entries: list[Entry], owner: str | None = None) -> Applied:
        """Apply the entries a peer (`owner`, its id) or another node (None: that node checked
        the ownership) sent."""
        self._prune()
        applied = Applied()
        for entry in entries:
            client = entry.client
            if owner is not None and self._owners.get(client, owner) != owner:
                applied.dropped += 1
                continue
            is_removal = entry.state == "null"
            present = client in self._states
            clock = self._clocks[client] if present else self._removed.get(client, (-1, 0.0))[0]
            if not (clock < entry.clock or (clock == entry.clock and is_removal and present)):
                continue
            if is_removal:
                if present:
                    self._forget(client, entry.clock)
                    applied.removed.append(client)
                    applied.entries.append(entry)
                elif self._removed.pop(client, None) is not None:
                    self._removed[client] = (entry.clock, self._now())  # now the newest
                continue
            size = len(entry.state.encode())
            if (
                size > self._max_state_bytes
                or self._total - self._sizes.get(client, 0) + size > self._max_total_bytes
            ):
                applied.dropped += 1
                continue
            self._removed.pop(client, None)
            self._total += size - self._sizes.get(client, 0)
            self._sizes[client] = size
            self._clocks[client] = entry.clock
            self._states[client] = entry.state
            self._owners.setdefault(client, owner or REMOTE)
            applied.present.append(client)
            applied.entries.append(entry)
        if applied.entries:
            self._encoded = None
        return applied

    def remove(self, clients: list[int]) -> bytes | None:
        """Remove `clients` that still have a state; the awareness update telling others so."""
        entries = []
        for client in clients:
            if client in self._states:
                clock = self._clocks[client] + 1
                self._forget(client, clock)
                entries.append(Entry(client, clock, "null"))
        if not entries:
            return None
        self._encoded = None
        return encode(entries)

    def _forget(self, client: int, clock: int) -> None:
        del self._states[client]
        del self._clocks[client]
        self._total -= self._sizes.pop(client)
        self._owners.pop(client, None)
        self._removed[client] = (clock, self._now())
        self._prune()

    def _prune(self) -> None:
        removed = self._removed
        if not removed:
            return
        horizon = self._now() - self._removed_ttl
        while removed:
            client, (_, at) = next(iter(removed.items()))
            if at > horizon and len(removed) <= self._max_removed:
                return
            del removed[client]

    def encoded(self) -> bytes | None:
        """One awareness update with every known state (None if there is none)."""
        if not self._states:
            return None
        if self._encoded is None:
            self._encoded = encode([Entry(c, self._clocks[c], s) for c, s in self._states.items()])
        return self._encoded

    @property
    def total_bytes(self) -> int:
        """The bytes of every state kept."""
        return self._total

    @property
    def remembered(self) -> int:
        """Client ids the table holds anything for (present or recently removed)."""
        return len(self._states) + len(self._removed)

    def __len__(self) -> int:
        return len(self._states)
