"""A socket's outbound side (collab.connection): the send loop tells a client that left from a
failure of its own, the idle timeout runs on a clock the test moves (no real seconds), and a
newcomer's document is written at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnected, WebSocketState

from harness.waiting import eventually
from jacameno.collab.connection import Connection, receive_frame
from jacameno.collab.gatekeeper import Access
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.wire import FRAMES_EXTENSION
from jacameno.collab.ywebsocket import DIALECT
from jacameno.settings.collab import CollabConfig


class _Socket:
    """What the send loop uses of a WebSocket, with a send that fails as told."""

    def __init__(self, failure: BaseException) -> None:
        self.scope: dict[str, Any] = {}  # no frames extension: sends go through ASGI
        self.failure = failure

    async def send_bytes(self, data: bytes) -> None:
        raise self.failure


async def _send_one(failure: BaseException) -> Connection:
    socket: Any = _Socket(failure)
    websocket: WebSocket = socket
    connection = Connection(websocket, max_messages=8, max_bytes=1024, close_timeout=1)
    connection.send(b"\x00")
    await eventually(lambda: connection.close_code is not None)
    return connection


@pytest.mark.parametrize(
    "failure",
    [WebSocketDisconnected("closed"), ConnectionResetError("reset")],
    ids=["starlette", "transport"],
)
async def test_a_client_that_left_ends_the_socket_without_a_log_line(
    failure: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    connection = await _send_one(failure)
    assert connection.close_code == 1006
    assert [r for r in caplog.records if getattr(r, "action", "") == "collab.send_failed"] == []


async def test_any_other_send_failure_ends_the_socket_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = await _send_one(RuntimeError("a bug in the send loop"))
    assert connection.close_code == 1006
    failed = [r for r in caplog.records if getattr(r, "action", "") == "collab.send_failed"]
    assert [(r.levelname, r.exc_info is not None) for r in failed] == [("ERROR", True)]


@dataclass
class _Timer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class _ManualClock:
    """A clock that moves only when told, running the timers that fall due."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[_Timer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> _Timer:
        timer = _Timer(when, callback)
        self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while due := [t for t in self._timers if t.when <= self.now and not t.cancelled]:
            for timer in due:
                self._timers.remove(timer)
                timer.callback()


class _Talking:
    """A WebSocket whose client sends the frames put in `frames`."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.application_state = WebSocketState.DISCONNECTED  # no close frame to write
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.receive", "bytes": await self.frames.get()}

    async def send_bytes(self, data: bytes) -> None:
        return None


IDLE = CollabConfig(idle_timeout=1.0)


async def _frame(socket: _Talking, connection: Connection) -> bytes | None:
    """The client sends a frame and the server receives it."""
    socket.frames.put_nowait(b"\x00")
    websocket: Any = socket
    return await receive_frame(websocket, connection, IDLE)


def _closed(connection: Connection) -> tuple[int | None, str]:
    return connection.close_code, connection.close_reason


async def _talking(clock: _ManualClock) -> tuple[_Talking, Connection]:
    socket = _Talking()
    websocket: Any = socket
    connection = Connection(websocket, max_messages=8, max_bytes=1024, close_timeout=1, clock=clock)
    return socket, connection


async def test_a_silent_socket_is_closed_after_the_idle_timeout() -> None:
    clock = _ManualClock()
    socket, connection = await _talking(clock)
    assert await _frame(socket, connection) == b"\x00"
    clock.advance(0.99)
    assert _closed(connection) == (None, "")
    clock.advance(0.01)
    assert _closed(connection) == (1000, "idle")
    await connection.finish()


async def test_a_socket_that_keeps_talking_is_not_idle() -> None:
    clock = _ManualClock()
    socket, connection = await _talking(clock)
    for _ in range(8):  # 2.4 s of frames 0.3 s apart, against a 1 s idle timeout
        assert await _frame(socket, connection) == b"\x00"
        clock.advance(0.3)
        assert _closed(connection) == (None, "")
    clock.advance(1.0)
    assert _closed(connection) == (1000, "idle")
    await connection.finish()


class _Transport:
    """The frames writer our uvicorn protocol offers (jacameno.collab.wire.FrameWriter), and
    the socket that offers it: what was written, write by write."""

    received_at = 0.0
    application_state = WebSocketState.DISCONNECTED  # nothing to close at the end

    def __init__(self) -> None:
        self.scope = {"extensions": {FRAMES_EXTENSION: self}}
        self.writes: list[bytes] = []

    def write_frames(self, data: bytes) -> bool:
        self.writes.append(data)
        return True

    def write_buffer_size(self) -> int:
        return 0


def _wire(kind: Kind, payload: bytes) -> bytes:
    frame = Outgoing(kind, payload).frame(DIALECT)
    assert frame is not None
    return frame.wire


async def test_a_newcomers_document_is_written_in_the_turn_it_is_handed_over() -> None:
    """What a turn gives a socket goes out at the loop's next turn, in one write; but a
    newcomer's first sync step 2 (and what was queued before it) goes out at once: in a burst
    of joiners the next turn comes only after the burst's other handshakes."""
    transport = _Transport()
    socket: Any = transport
    connection = Connection(socket, max_messages=8, max_bytes=1 << 20, close_timeout=1)
    synced: list[float] = []
    peer = Peer(connection, DIALECT, Access("u", "editor", 0), 0.0, None, (0.0, synced.append))
    step1, step2 = _wire(Kind.SYNC_STEP1, b"\x00"), _wire(Kind.SYNC_STEP2, b"\x00\x00")
    peer.deliver(Outgoing(Kind.SYNC_STEP1, b"\x00"))
    assert transport.writes == []  # at the next turn
    peer.deliver(Outgoing(Kind.SYNC_STEP2, b"\x00\x00"))
    assert transport.writes == [step1 + step2]  # now, both, in order
    assert len(synced) == 1
    peer.deliver(Outgoing(Kind.SYNC_STEP2, b"\x00\x00"))  # a later answer: at the next turn
    assert transport.writes == [step1 + step2]
    await asyncio.sleep(0)
    assert transport.writes == [step1 + step2, step2]
    assert len(synced) == 1
    connection.close(1000)
    await eventually(lambda: connection._sender.done())
