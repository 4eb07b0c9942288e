"""Awareness (y-protocols/awareness): who is online, cursors, selections. Relayed, never logged.

An awareness update is varuint(#entries) { varuint(client id) varuint(clock) varstring(state as
JSON, "null" when the client is gone) }. The room keeps the latest state of every client, to send
to sockets that join, and remembers which socket introduced which client ids: when a socket
drops, its clients are removed and everyone is told."""

from __future__ import annotations

from dataclasses import dataclass

from jacameno.collab.encoding import Reader, write_var_string, write_var_uint
from jacameno.collab.update import check_json


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


class AwarenessStates:
    """The latest awareness state of each client of one room, with y-protocols' rule: an entry
    wins if its clock is newer, or equal and it removes the client."""

    def __init__(self) -> None:
        self._clocks: dict[int, int] = {}
        self._states: dict[int, str] = {}
        self._encoded: bytes | None = None

    def apply(self, entries: list[Entry]) -> tuple[list[int], list[int]]:
        """Apply entries; return (client ids now present, client ids removed)."""
        present: list[int] = []
        removed: list[int] = []
        for entry in entries:
            clock = self._clocks.get(entry.client, -1)
            is_removal = entry.state == "null"
            if clock < entry.clock or (
                clock == entry.clock and is_removal and entry.client in self._states
            ):
                self._clocks[entry.client] = entry.clock
                if is_removal:
                    if self._states.pop(entry.client, None) is not None:
                        removed.append(entry.client)
                else:
                    self._states[entry.client] = entry.state
                    present.append(entry.client)
                self._encoded = None
        return present, removed

    def remove(self, clients: list[int]) -> bytes | None:
        """Remove `clients` that still have a state; the awareness update telling others so."""
        entries = []
        for client in clients:
            if client in self._states:
                del self._states[client]
                clock = self._clocks[client] + 1
                self._clocks[client] = clock
                entries.append(Entry(client, clock, "null"))
        if not entries:
            return None
        self._encoded = None
        return encode(entries)

    def encoded(self) -> bytes | None:
        """One awareness update with every known state (None if there is none)."""
        if not self._states:
            return None
        if self._encoded is None:
            self._encoded = encode([Entry(c, self._clocks[c], s) for c, s in self._states.items()])
        return self._encoded

    def __len__(self) -> int:
        return len(self._states)
