"""What the rooms of several nodes tell each other over the bus, and how a room stays current.

After a room's batch commits, its node publishes one message on the project's channel: the
batch's first and last stream versions, the document updates it holds, and the origin node.
Awareness updates (and the removals of a socket that left) are relayed the same way, never
logged. A node hands a message from another node to its loaded room of that project
(`Room.receive_committed`, `Room.receive_remote_awareness`); it ignores its own.

Ordering. Stream versions are gapless, and each message covers one whole append. The room
applies a message only inside its writer task, the one task that appends and moves
`room.version` (its own commits and `_catch_up` too), so a message never races an append:

- first version == room.version + 1: the next events of the stream; applied, broadcast to the
  local peers, and room.version becomes the message's last version.
- first version > room.version + 1: something was missed; the room reads the stream from the
  log after its version up to the message's last version (the log is the truth).
- last version <= room.version: the room already has it (its own append revealed those events
  and `_catch_up` read them, or a read of the log did); ignored, so nothing applies twice.

An append of this node that lands after another node's events reads them from the log before
its own are broadcast (`_catch_up`); their message, arriving later, is then ignored.

Missed messages. Redis pub/sub loses what is published while a subscriber is disconnected.
Whenever the bus is (again) subscribed, every loaded room reads the log after its version; a
room being loaded subscribes first and reads the log once more when it is in place; and every
`log_check_interval` seconds each loaded room that heard no append from the bus meanwhile reads
the tail of its stream, so that nothing lost on the bus (a publisher without Redis, a dropped
message) leaves it behind for much longer (at most twice the interval).

Without several nodes there is no relay: a single node publishes nothing and pays nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

from crdt.encoding import Reader, write_var_bytes, write_var_string, write_var_uint
from jacameno.bus import Bus
from jacameno.collab.errors import MalformedMessage
from jacameno.collab.room import Room
from jacameno.collab.writer import Committed

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "jacameno:project:"
_COMMITTED = 0
_AWARENESS = 1
_KINDS = (_COMMITTED, _AWARENESS)


@dataclass(frozen=True, slots=True)
class Message:
    origin: str  # the node that published it
    body: Committed | bytes  # bytes: an awareness update


def encode_committed(origin: str, committed: Committed) -> bytes:
    parts = [
        write_var_uint(_COMMITTED),
        write_var_string(origin),
        write_var_uint(committed.first),
        write_var_uint(committed.last),
        write_var_uint(len(committed.updates)),
    ]
    parts += (write_var_bytes(update) for update in committed.updates)
    return b"".join(parts)


def encode_awareness(origin: str, payload: bytes) -> bytes:
    return b"".join((write_var_uint(_AWARENESS), write_var_string(origin), payload))


def decode(data: bytes) -> Message:
    """MalformedMessage if `data` is not a message of this module."""
    reader = Reader(data, "bus message")
    kind = reader.var_uint()
    origin = reader.var_string()
    if kind == _AWARENESS:
        return Message(origin, data[len(data) - reader.remaining :])
    if kind != _COMMITTED:
        raise reader.fail(f"unknown kind {kind}")
    first, last, count = reader.var_uint(), reader.var_uint(), reader.var_uint()
    if not 0 < first <= last or count > last - first + 1:
        raise reader.fail(f"versions {first}..{last} with {count} updates")
    updates = [reader.var_bytes() for _ in range(count)]
    reader.end()
    return Message(origin, Committed(first, last, updates))


class Registry(Protocol):
    """The rooms of this node (`Rooms`)."""

    def loaded(self, project_id: str) -> Room | None: ...

    def live(self) -> list[Room]:
        """The loaded rooms that have not failed."""
        ...


class Relay:
    """The bus as the rooms of one node use it; built and closed by `Rooms`."""

    def __init__(self, bus: Bus, node: str, rooms: Registry, check_interval: float) -> None:
        self.bus = bus
        self.node = node
        self._rooms = rooms
        self._check_interval = check_interval
        self._checker: asyncio.Task[None] | None = None
        self._heard: set[str] = set()  # projects with a message since the last log check
        # Redis delivers a node's own messages back to it: known by their first bytes, they are
        # dropped before decoding.
        self._own = tuple(write_var_uint(kind) + write_var_string(node) for kind in _KINDS)

    def start(self) -> None:
        self.bus.start(self._deliver, self._connected)
        self._checker = asyncio.create_task(self._check(), name="collab-log-check")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        await self.bus.close()

    async def subscribe(self, project_id: str) -> None:
        await self.bus.subscribe(CHANNEL_PREFIX + project_id)

    def unsubscribe(self, project_id: str) -> None:
        self.bus.unsubscribe(CHANNEL_PREFIX + project_id)

    def publish_committed(self, project_id: str, committed: Committed) -> None:
        self.bus.publish(CHANNEL_PREFIX + project_id, encode_committed(self.node, committed))

    def publish_awareness(self, project_id: str, payload: bytes) -> None:
        self.bus.publish(CHANNEL_PREFIX + project_id, encode_awareness(self.node, payload))

    def _deliver(self, channel: str, data: bytes) -> None:
        if data.startswith(self._own):
            return
        project_id = channel.removeprefix(CHANNEL_PREFIX)
        room = self._rooms.loaded(project_id)
        if room is None or room.failed:
            return
        try:
            message = decode(data)
            if message.origin == self.node:
                return
            if isinstance(message.body, Committed):
                self._heard.add(project_id)
                room.receive_committed(message.body)
            else:
                room.receive_remote_awareness(message.body)
        except MalformedMessage as exc:
            # Another node's awareness was checked there; a message that does not decode here
            # comes from a node of another version: its edits still reach us through the log.
            logger.warning(
                "bus message refused",
                extra={"action": "collab.bus_refused", "channel": channel, "error": repr(exc)},
            )
            room.follow_log()

    def _connected(self) -> None:
        for room in self._rooms.live():
            room.follow_log()

    async def _check(self) -> None:
        # A room that heard another node's append since the last check is skipped: had it
        # missed one before that, the gap showed. Only its last message can be missing.
        while True:
            await asyncio.sleep(self._check_interval)
            heard, self._heard = self._heard, set()
            for room in self._rooms.live():
                if room.project_id not in heard:
                    room.follow_log()
