"""One WebSocket's outbound side, bounded.

Where the server offers it (jacameno.collab.wire), frames go straight to the socket's transport:
everything one turn of the event loop sends a socket is written at the next turn, in one write,
and the bound is on the bytes the kernel has not taken yet. Elsewhere (any other ASGI server) a
bounded queue is drained by a sender task through ASGI. Either way the sender task writes the
close frame.

`send` never blocks and never drops silently: a socket over its bounds (it reads more slowly
than its room writes) is closed with 1013 and resyncs when it reconnects.

Sync answers (`bulk` frames: a newcomer's whole document, which may be far larger than the
bound) are not counted against the byte bound while they are unread, at most
`sync_answers_unread` of them at a time; whatever else the socket leaves unread is. So a large
document is never taken for a slow socket, and a socket that stops reading is still closed as
soon as its room sends it more than the bound. With frames written to the transport, how much of
an answer is still unread follows from the bytes written and the bytes the transport holds (it
sends in order)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.websockets import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

from jacameno.collab import wire
from jacameno.collab.budget import SyncBudget
from jacameno.collab.errors import (
    INTERNAL_ERROR,
    MALFORMED,
    NORMAL,
    TOO_LARGE,
    TRY_AGAIN_LATER,
    CollabError,
    MalformedMessage,
    close_code,
)
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the idle timeout needs of a clock; an asyncio event loop is one."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer: ...


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_messages: int,
        max_bytes: int,
        close_timeout: float,
        max_unread_bulk: int = 2,
        sync_budget: SyncBudget | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`clock` times the idle timeout: the running event loop unless a test passes its own."""
        self.id = uuid.uuid4().hex
        self.websocket = websocket
        self.sync_budget = sync_budget or SyncBudget.of(CollabConfig())
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_unread_bulk = max_unread_bulk
        self._close_timeout = close_timeout
        self._queue: deque[tuple[bytes, bool]] = deque()  # (payload, bulk)
        self._queued_bytes = 0  # not counting bulk frames
        self._queued_bulk = 0
        self._writer = wire.frame_writer(websocket)
        self._flusher = wire.flusher()
        self._out: list[bytes] = []  # framed, for the writer at the next turn
        self._out_bytes = 0
        self._out_bulk: list[tuple[int, int]] = []  # (end offset in _out, size) of bulk frames
        self._written = 0  # bytes handed to the transport so far
        self._held: deque[tuple[int, int]] = deque()  # (end offset in _written, size) of bulk
        self._unsent = 0  # bytes the transport held after the last flush, bulk frames aside
        self._wakeup = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.abandoned = False
        self._peer_gone = False
        self._owner = asyncio.current_task()
        self._clock: Clock = clock or asyncio.get_running_loop()
        self._heard_at = self._clock.time()
        # time.perf_counter() when the frame read last reached the server (`heard`)
        self.received_at = 0.0
        self._idle_timer: Timer | None = None
        self._sender = asyncio.create_task(self._send_loop(), name=f"collab-send-{self.id}")

    @classmethod
    def open(cls, websocket: WebSocket, config: CollabConfig) -> Connection:
        """The outbound side of an accepted socket, bounded as `config` says."""
        return cls(
            websocket,
            max_messages=config.outbound_messages,
            max_bytes=config.outbound_bytes,
            close_timeout=config.close_timeout,
            max_unread_bulk=config.sync_answers_unread,
            sync_budget=SyncBudget.of(config),
        )

    @property
    def writes_frames(self) -> bool:
        """Whether frames go straight to the transport (else through ASGI)."""
        return self._writer is not None

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def send(self, message: bytes) -> None:
        """Send one protocol message."""
        self.send_frame(wire.Frame(message))

    def send_frame(self, frame: wire.Frame, bulk: bool = False) -> None:
        """Send one protocol message that may go to many sockets (framed once for all); `bulk`
        for a sync answer, which the byte bound leaves aside (see the module's docstring)."""
        if self.close_code is not None:
            return  # the client learns from the close code that it must resync
        bulk = bulk and self._unread_bulk() < self._max_unread_bulk
        writer = self._writer
        if writer is not None:
            data = frame.wire
            if not self._out:
                self._flusher.schedule(self._flush)
            self._out.append(data)
            self._out_bytes += len(data)
            if bulk:
                self._out_bulk.append((self._out_bytes, len(data)))
                return
            self._queued_bytes += len(data)
            if self._queued_bytes + self._unsent > self._max_bytes:
                self._too_slow()
            return
        payload = frame.payload
        if bulk:
            self._queued_bulk += 1
        elif self._queue and (
            len(self._queue) >= self._max_messages
            or self._queued_bytes + len(payload) > self._max_bytes
        ):
            self._too_slow()
            return
        else:
            self._queued_bytes += len(payload)
        self._queue.append((payload, bulk))
        self._wakeup.set()

    def _unread_bulk(self) -> int:
        """Bulk frames that may still be unread (an upper bound until the next flush)."""
        return len(self._held) + len(self._out_bulk) + self._queued_bulk

    def _held_bulk_bytes(self, unsent: int) -> int:
        """How many of the `unsent` bytes the transport holds belong to bulk frames."""
        sent = self._written - unsent  # the transport sends in order
        held = self._held
        while held and held[0][0] <= sent:
            held.popleft()
        return sum(min(size, end - sent) for end, size in held)

    def _too_slow(self) -> None:
        logger.warning(
            "slow socket closed",
            extra={"action": "collab.backpressure", "connection": self.id},
        )
        self.close(TRY_AGAIN_LATER, "too slow: outbound queue full")

    def flush(self) -> None:
        """Write what this socket was given so far now, not at the loop's next turn."""
        if self._out:
            self._flush()

    def _flush(self) -> None:
        # Runs for every socket on every loop turn that sent it something: it allocates only
        # what the turn needs (bulk frames are rare).
        out, self._out = self._out, []
        bulk = self._out_bulk
        if bulk:
            self._out_bulk = []
        written, self._out_bytes = self._out_bytes, 0
        self._queued_bytes = 0
        writer = self._writer
        if self.close_code is None and out and writer is not None:
            # False: the socket is already closing or gone, which its reader learns.
            writer.write_frames(out[0] if len(out) == 1 else b"".join(out))
            if bulk:
                start = self._written
                self._held.extend((start + end, size) for end, size in bulk)
            self._written += written
            # What the kernel has not taken yet; it only shrinks until the next flush, so
            # sends until then count against this (an upper bound) without asking again.
            unsent = writer.write_buffer_size()
            self._unsent = unsent - self._held_bulk_bytes(unsent) if self._held else unsent
            if self._unsent > self._max_bytes:
                self._too_slow()

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frame being written (queued frames are discarded). Idempotent."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason[:120]
        self._queue.clear()
        self._out.clear()
        self._out_bulk.clear()
        self._queued_bytes = self._queued_bulk = self._out_bytes = 0
        self._wakeup.set()

    def watch_idle(self, timeout: float) -> None:
        """Close normally once the client has sent nothing for `timeout` seconds. One timer
        per connection, re-armed only when it fires (no timer per frame)."""
        if self._idle_timer is None and self.close_code is None:
            when = self._heard_at + timeout
            self._idle_timer = self._clock.call_at(when, functools.partial(self._idle, timeout))

    def heard(self) -> None:
        """A frame arrived from the client (read just now: what the server stamped when it
        received the bytes, while the protocol reads no further until this frame is taken)."""
        self._heard_at = self._clock.time()
        self.received_at = wire.arrived(self._writer)

    def _idle(self, timeout: float) -> None:
        if self.close_code is not None:
            return
        silent = self._clock.time() - self._heard_at
        if silent >= timeout:
            self.close(NORMAL, "idle")
        else:
            when = self._heard_at + timeout
            self._idle_timer = self._clock.call_at(when, functools.partial(self._idle, timeout))

    def disconnected(self, code: int) -> None:
        """The client closed or vanished: nothing more can be sent."""
        self._peer_gone = True
        self.close(code)

    async def finish(self) -> None:
        """Close (normally, unless a code was set) and wait for the sender, at most the close
        timeout; a socket that never reads is abandoned to the server."""
        self.close(1000)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._sender), 2 * self._close_timeout)
        except TimeoutError:
            self._sender.cancel()
            await asyncio.wait({self._sender})  # unlike suppressing CancelledError, keeps ours
            if not self._sender.cancelled():
                self._sender.result()  # it ended before the cancellation landed: its error

    async def _send_close(self) -> None:
        assert self.close_code is not None
        try:
            await asyncio.wait_for(
                self.websocket.close(self.close_code, self.close_reason), self._close_timeout
            )
        except TimeoutError:
            # The client reads nothing, not even the close frame: stop serving it. The task
            # that reads from it is cancelled and treats `abandoned` as a normal end.
            self.abandoned = True
            if self._owner is not None and not self._owner.done():
                self._owner.cancel()

    async def _send_loop(self) -> None:
        websocket = self.websocket
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue and self.close_code is None:
                    frame, bulk = self._queue.popleft()
                    if bulk:
                        self._queued_bulk -= 1
                    else:
                        self._queued_bytes -= len(frame)
                    await websocket.send_bytes(frame)
                if self.close_code is not None:
                    if (
                        not self._peer_gone
                        and websocket.application_state == WebSocketState.CONNECTED
                    ):
                        await self._send_close()
                    return
        except (WebSocketDisconnect, WebSocketDisconnected, OSError):
            # The client went away, or the socket is already closed (uvicorn's
            # ClientDisconnected is an OSError): nothing left to deliver.
            if self.close_code is None:
                self.close_code = 1006
        except RuntimeError:
            # Not a disconnect: the ASGI server refused a send, or a bug here. The socket
            # ends all the same, but this is no client leaving.
            logger.exception(
                "send failed", extra={"action": "collab.send_failed", "connection": self.id}
            )
            if self.close_code is None:
                self.close_code = 1006


async def receive_frame(
    websocket: WebSocket, connection: Connection, config: CollabConfig
) -> bytes | None:
    """The client's next binary frame; None once the connection is over. A text frame or an
    oversized frame closes the connection with its code, and so does an idle client (from a
    timer: the close ends the wait for a frame); a departed client is recorded as
    disconnected."""
    connection.watch_idle(config.idle_timeout)
    message = await websocket.receive()
    connection.heard()
    if message["type"] == "websocket.disconnect":
        connection.disconnected(int(message.get("code") or 1005))
        return None
    frame: bytes | None = message.get("bytes")
    if frame is None:
        connection.close(MALFORMED, "text frames are not part of the protocol")
    elif len(frame) > config.max_message_bytes:
        connection.close(TOO_LARGE, "message too large")
        return None
    return frame


@contextlib.asynccontextmanager
async def session_guard(connection: Connection, **log_fields: Any) -> AsyncIterator[None]:
    """Turn whatever ends a socket's session into its close, then finish the socket: a
    CollabError closes with its own code, the cancellation of an abandoned socket is a normal
    end, anything else is logged and closes with 1011."""
    try:
        yield
    except (CollabError, MalformedMessage) as exc:
        connection.close(close_code(exc), str(exc))
    except asyncio.CancelledError:
        if not connection.abandoned:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
    except Exception:
        logger.exception(
            "collaboration socket failed",
            extra={"action": "collab.error", "connection": connection.id, **log_fields},
        )
        connection.close(INTERNAL_ERROR, "internal error")
    finally:
        await connection.finish()
