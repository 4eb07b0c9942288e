"""Frames on the wire: a room's messages framed for WebSocket once, written to many sockets.

ASGI sends a message per `websocket.send` call, and the server frames it again for every
receiver. When the server offers the `jacameno.websocket.frames` extension (jacameno.server's
protocol does), a connection instead writes bytes it framed itself straight to the socket's
transport, and all it has for a socket in one turn of the event loop in one write. A broadcast
then costs, per receiver, one list append; the framing is done once per message.

Server-to-client frames are never masked and we send no extension data (per-message deflate is
off), so a frame is the same bytes for every receiver."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from starlette.websockets import WebSocket

logger = logging.getLogger(__name__)

FRAMES_EXTENSION = "jacameno.websocket.frames"

_BINARY_FIN = 0x82


class FrameWriter(Protocol):
    """What the server offers under FRAMES_EXTENSION, once the socket is accepted."""

    def write_frames(self, data: bytes) -> bool:
        """Write complete, unmasked frames; False if the socket is closing or gone (nothing
        was written)."""
        ...

    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        ...

    @property
    def received_at(self) -> float:
        """`time.perf_counter()` when the socket's last bytes arrived: the arrival of the frame
        the app read last, as long as it reads it before the protocol resumes reading."""
        ...


def frame_writer(websocket: WebSocket) -> FrameWriter | None:
    writer: FrameWriter | None = websocket.scope.get("extensions", {}).get(FRAMES_EXTENSION)
    return writer


def arrived(writer: FrameWriter | None) -> float:
    """`time.perf_counter()` when what the app reads now reached the server: as the server
    stamped it, else (no such server) now."""
    return writer.received_at if writer is not None else time.perf_counter()


def frame_binary(payload: bytes) -> bytes:
    """`payload` as one final, unmasked binary frame (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_BINARY_FIN, size))
    elif size < 1 << 16:
        header = bytes((_BINARY_FIN, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_BINARY_FIN, 127)) + size.to_bytes(8, "big")
    return header + payload


class Frame:
    """One protocol message, with its WebSocket framing made when first asked for."""

    __slots__ = ("_wire", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = frame_binary(self.payload)
        return wire


class Flusher:
    """Runs each registered callback once, at the next turn of the event loop: everything a
    turn gave a socket goes out in one write."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Callable[[], None]] = []

    def schedule(self, flush: Callable[[], None]) -> None:
        if not self._due:
            self._loop.call_soon(self._run)
        self._due.append(flush)

    def _run(self) -> None:
        due, self._due = self._due, []
        for flush in due:
            try:
                flush()
            except Exception:  # one socket's failure must not hold back the others' frames
                logger.exception("flushing frames failed", extra={"action": "collab.flush"})


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = (
    weakref.WeakKeyDictionary()
)


def flusher() -> Flusher:
    """The running loop's flusher."""
    loop = asyncio.get_running_loop()
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = Flusher(loop)
    return found
