"""The floor of load/bench_broadcast's joins: a y-websocket server on this machine's Python stack
(uvicorn with JACAMENO's own HTTP and WebSocket protocols, jacameno.server.config; pycrdt) with
nothing of JACAMENO's in the way: no token, no membership, no log, no session logging, no read
models. Every path is a room, kept in memory, as the y-websocket reference server does. A joiner
gets sync step 1 and the whole document (sync step 2) as it connects, as ours sends them; a sync
step 1 is answered with what the document has beyond it; updates are applied and relayed to the
room's other sockets; awareness is relayed as it came. Run as
`python -m load.python_stack PORT`; `python_stack_server()` starts it beside a benchmark.

What a join costs here is what any Python server built on this stack pays at least: the HTTP
upgrade, the WebSocket handshake, a task per socket, the frames. Ours, the reference's and this
one's figures side by side tell the stack's share of a join from JACAMENO's own."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pycrdt import Doc
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from jacameno.collab import protocol
from jacameno.server import config
from load.module_server import module_server


@dataclass(slots=True)
class _Room:
    doc: Doc[Any] = field(default_factory=Doc)
    sockets: set[WebSocket] = field(default_factory=set)

    async def relay(self, frame: bytes, sender: WebSocket) -> None:
        for socket in list(self.sockets):
            if socket is not sender:
                with contextlib.suppress(Exception):  # a socket going away leaves the others
                    await socket.send_bytes(frame)


def app() -> Starlette:
    rooms: dict[str, _Room] = {}

    async def serve(websocket: WebSocket) -> None:
        await websocket.accept()
        room = rooms.setdefault(websocket.url.path, _Room())
        room.sockets.add(websocket)
        try:
            await websocket.send_bytes(protocol.encode_sync_step1(room.doc.get_state()))
            await websocket.send_bytes(protocol.encode_sync_step2(room.doc.get_update()))
            while True:
                frame = await websocket.receive_bytes()
                message = protocol.decode(frame)
                if isinstance(message, protocol.SyncStep1):
                    answer = room.doc.get_update(message.state_vector)
                    await websocket.send_bytes(protocol.encode_sync_step2(answer))
                elif isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
                    room.doc.apply_update(message.update)
                    await room.relay(protocol.encode_update(message.update), websocket)
                elif isinstance(message, protocol.Awareness):
                    await room.relay(frame, websocket)
        except WebSocketDisconnect:
            pass
        finally:
            room.sockets.discard(websocket)
            if not room.sockets:
                rooms.pop(websocket.url.path, None)

    return Starlette(routes=[WebSocketRoute("/{path:path}", serve)])


@dataclass(frozen=True, slots=True)
class PythonStackServer:
    pid: int
    ws_url: str  # ws://host:port


@contextlib.asynccontextmanager
async def python_stack_server() -> AsyncIterator[PythonStackServer]:
    """The server started on a free port of 127.0.0.1, stopped (SIGTERM) afterwards."""
    async with module_server("load.python_stack") as (pid, port):
        yield PythonStackServer(pid, f"ws://127.0.0.1:{port}")


def main() -> int:
    port = int(sys.argv[1])
    uvicorn.Server(config(app(), "127.0.0.1", port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
