"""The clients of the collaboration benchmark: y-websocket v1 over `websockets`, each with its own
pycrdt Doc, all in one asyncio process, and the ledger of every edit they sent and received.

An edit is one transaction on the client's Doc: a few characters inserted into the Text
`lyrics` near its start (see HEAD), and the key `"{room}.{client}:{seq}"` set in the Map
`bench` to the send time (microseconds since the run started). The update it produces is sent
as one sync update message. The server broadcasts an update with the bytes it received (the log
keeps them exactly as received), so receivers find the edit in the ledger by the update's bytes,
without decoding it. Every received update is also applied to the receiver's Doc, so that the
documents can be compared at the end (with each other, and with the document rebuilt from the
log): by default after the measured window, in the order received (`catch_up`), because applying
costs the harness a quarter of its CPU at 18,000 deliveries/s on a machine it shares with the
server; `apply_live` applies each one on arrival, like a real provider.

A received update whose bytes the ledger does not know (a server that re-encodes what it
broadcasts, as the y-websocket reference server does) is found by the edit's key, which its
bytes spell as they are (`Ledger.find`); one that holds no key, or several (merged updates), is
counted as `unknown` and is still applied: its edits then show as missing deliveries, and the
documents as converged or not.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Map, Text, TransactionEvent
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crdt.errors import MalformedUpdate
from jacameno.collab import protocol

LETTERS = "abcdefghijklmnopqrstuvwxyz "
# Edits insert within the first HEAD characters of the Text: in pycrdt an insert at index i walks
# the blocks before i, and after a few thousand edits from ten clients a random index costs the
# harness 40-90 us an edit (a third of its CPU at 2,000 edits/s). Near the head, concurrent
# inserts still land between each other's characters, which is what CRDT integration works at.
HEAD = 32
KEY = re.compile(rb"\d+\.\d+:\d+")  # an edit's key in `bench` ("room.client:seq")


# The first two bytes of every sync update frame: what the receive path tests for first.
UPDATE_PREFIX = protocol.encode_update(b"")[:2]


def update_payload(frame: bytes) -> bytes | None:
    """The update of a sync update frame, or None for any other frame: the hot receive path,
    which builds no message for updates under 128 bytes (nearly all of ours) and leaves every
    other case to the server's own strict decoder (`jacameno.collab.protocol`)."""
    if frame[:2] != UPDATE_PREFIX:
        return None
    if len(frame) > 2 and frame[2] < 0x80 and frame[2] + 3 == len(frame):
        return frame[3:]
    message = protocol.decode(frame)
    return message.update if isinstance(message, protocol.SyncUpdate) else None


@dataclass(slots=True)
class Edit:
    """One edit sent: who sent it, when, and who received it."""

    room: int
    sender: int  # the client's index in its room
    seq: int
    sent_ns: int  # time.perf_counter_ns() just before the send
    measured: bool  # sent inside the measured window
    received: int = 0  # bit i set: the room's client i received it
    acked_ns: int = 0  # when the sender got its echo (0: not yet)


@dataclass(slots=True)
class Ledger:
    """Shared by every client of a run (one process, one thread: no locking)."""

    edits: dict[bytes, Edit] = field(default_factory=dict)
    by_key: dict[bytes, Edit] = field(default_factory=dict)  # the same edits, by `bench` key
    fanout: list[float] = field(default_factory=list)  # seconds, send -> each other receiver
    fanout_sent: list[int] = field(default_factory=list)  # the edit's sent_ns, for each of those
    acks: list[float] = field(default_factory=list)  # seconds, send -> the sender's own echo
    send_lateness: list[float] = field(default_factory=list)  # seconds behind the schedule
    measuring: bool = False  # inside the measured window (by the clock of whoever looks)
    window_deliveries: int = 0  # deliveries to other clients received inside the window
    window_echoes: int = 0
    window_edits: int = 0  # edits sent inside the window
    duplicates: int = 0
    unknown: int = 0  # update frames whose bytes no client sent
    denied: int = 0  # permission-denied auth messages
    other_frames: int = 0  # sync step 1/2, awareness, ...

    def find(self, update: bytes) -> Edit | None:
        """The edit of a received update: by its bytes, else (re-encoded) by its one key."""
        edit = self.edits.get(update)
        if edit is not None:
            return edit
        keys = KEY.findall(update)
        return self.by_key.get(keys[0]) if len(keys) == 1 else None

    def missing(self, room_sizes: list[int], *, measured_only: bool) -> tuple[int, int]:
        """(deliveries missing, echoes missing) over the edits sent (in the window only, or all)."""
        deliveries = echoes = 0
        for edit in self.edits.values():
            if measured_only and not edit.measured:
                continue
            expected = room_sizes[edit.room] - 1
            got = (edit.received & ~(1 << edit.sender)).bit_count()
            deliveries += expected - got
            echoes += edit.acked_ns == 0
        return deliveries, echoes


class Client:
    def __init__(
        self,
        ledger: Ledger,
        url: str,
        room: int,
        index: int,
        *,
        seed: int,
        started_ns: int,
        open_timeout: float = 30.0,
        apply_live: bool = False,
    ) -> None:
        self.ledger = ledger
        self.url = url
        self.room = room
        self.index = index
        self.bit = 1 << index
        self.started_ns = started_ns
        self.open_timeout = open_timeout
        self.doc: Doc[Any] = Doc()
        self.bench: Map[Any] = self.doc.get("bench", type=Map)
        self.lyrics: Text = self.doc.get("lyrics", type=Text)
        self.random = random.Random(seed)
        self.seq = 0
        self.sent = 0
        self.synced = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.close_code: int | None = None  # set if the server closed us (or the link broke)
        self.close_reason = ""
        self.closing = False  # we are closing it ourselves
        self._reader: asyncio.Task[None] | None = None
        self._captured: list[bytes] = []
        self.apply_live = apply_live
        self.pending: list[bytes] = []  # received, not applied yet (unless apply_live)

    @property
    def name(self) -> str:
        return f"{self.room}.{self.index}"

    async def connect(self) -> None:
        """Open the socket, ask for the server's state and wait for it (sync step 2)."""
        self.ws = await connect(
            self.url,
            compression=None,
            max_size=None,
            max_queue=None,  # never stop reading: a slow harness must show as latency
            ping_interval=None,  # the server pings; websockets answers
            open_timeout=self.open_timeout,
            close_timeout=5,
        )
        self._reader = asyncio.create_task(self._read(), name=f"client-{self.name}")
        await self.ws.send(protocol.encode_sync_step1(self.doc.get_state()))
        synced = asyncio.create_task(self.synced.wait())
        done, _ = await asyncio.wait(
            {synced, self._reader}, timeout=self.open_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if synced not in done:
            synced.cancel()
            raise ConnectionError(
                f"client {self.name} not synced: close code {self.close_code} {self.close_reason}"
            )

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                if isinstance(frame, str):
                    raise MalformedUpdate("text frame from the server")
                reply = self.handle(frame)
                if reply is not None:
                    await self.ws.send(reply)
        except ConnectionClosed:
            pass
        if not self.closing:
            self.close_code = self.ws.close_code or 1006
            self.close_reason = self.ws.close_reason or ""

    def handle(self, frame: bytes) -> bytes | None:
        """Take one frame from the server; returns the frame to answer with, if any."""
        update = update_payload(frame)
        if update is not None:
            now = time.perf_counter_ns()
            ledger = self.ledger
            edit = ledger.find(update)
            if edit is None:
                ledger.unknown += 1
            elif edit.room == self.room and edit.sender == self.index:
                if edit.acked_ns:
                    ledger.duplicates += 1
                    return None
                edit.acked_ns = now
                edit.received |= self.bit
                if edit.measured:
                    ledger.acks.append((now - edit.sent_ns) / 1e9)
                if ledger.measuring:
                    ledger.window_echoes += 1
                return None  # our own update: the Doc has it already
            elif edit.received & self.bit:
                ledger.duplicates += 1
                return None
            else:
                edit.received |= self.bit
                if edit.measured:
                    ledger.fanout.append((now - edit.sent_ns) / 1e9)
                    ledger.fanout_sent.append(edit.sent_ns)
                if ledger.measuring:
                    ledger.window_deliveries += 1
            if self.apply_live:
                self.doc.apply_update(update)
            else:
                self.pending.append(update)
            return None
        message = protocol.decode(frame)
        self.ledger.other_frames += 1
        if isinstance(message, protocol.SyncStep1):
            return protocol.encode_sync_step2(self.doc.get_update(message.state_vector))
        if isinstance(message, protocol.SyncStep2):
            self.catch_up()
            self.doc.apply_update(message.update)
            self.synced.set()
        elif isinstance(message, protocol.Auth):
            self.ledger.denied += 1
        return None

    def _capture(self, event: TransactionEvent) -> None:
        self._captured.append(event.update)

    def make_edit(self) -> tuple[str, bytes]:
        """One local edit; its key in `bench` and its update."""
        self.seq += 1
        key = f"{self.name}:{self.seq}"
        length = len(self.lyrics)
        at = self.random.randint(0, min(length, HEAD))
        chars = "".join(self.random.choices(LETTERS, k=self.random.randint(1, 4)))
        subscription = self.doc.observe(self._capture)
        try:
            with self.doc.transaction():
                self.lyrics.insert(at, chars)
                self.bench[key] = (time.perf_counter_ns() - self.started_ns) // 1000
        finally:
            self.doc.unobserve(subscription)
        update = self._captured.pop()
        self._captured.clear()
        return key, update

    async def edit(self, measured: bool) -> None:
        """Make one edit, note it in the ledger and send it."""
        assert self.ws is not None
        key, update = self.make_edit()
        sent_ns = time.perf_counter_ns()
        edit = Edit(self.room, self.index, self.seq, sent_ns, measured)
        self.ledger.edits[update] = self.ledger.by_key[key.encode()] = edit
        if measured:
            self.ledger.window_edits += 1
        self.sent += 1
        await self.ws.send(protocol.encode_update(update))

    async def run(self, rate: float, start: float, measure_from: float, stop: float) -> None:
        """Edit `rate` times a second from `start` (time.perf_counter(), plus a random phase)
        until `stop`, on a fixed schedule: a late edit is sent at once, not skipped (the offered
        load stays)."""
        interval = 1.0 / rate
        due = start + self.random.random() * interval
        lateness = self.ledger.send_lateness
        clock = time.perf_counter
        while due < stop and self.close_code is None:
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = measure_from <= due
            if measured:
                lateness.append(max(0.0, clock() - due))
            await self.edit(measured)
            due += interval

    def catch_up(self) -> None:
        """Apply what was received and not applied yet, in the order received."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        with self.doc.transaction():
            for update in pending:
                self.doc.apply_update(update)

    def content(self) -> dict[str, Any]:
        self.catch_up()
        return content(self.doc)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


def content(doc: Doc[Any]) -> dict[str, Any]:
    """What the benchmark compares: the two roots it writes, as plain values."""
    bench = doc.get("bench", type=Map).to_py()
    return {"bench": bench, "lyrics": str(doc.get("lyrics", type=Text))}
