"""How JACAMENO is served: uvicorn with one WebSocket protocol of ours.

`FramesWebSocketProtocol` is uvicorn's sans-I/O WebSocket protocol (websockets' parser) that also
offers the ASGI extension `jacameno.websocket.frames` (jacameno.collab.wire): the collaboration
endpoints write frames they framed once for a whole room straight to each socket's transport,
instead of one `websocket.send` per message per receiver through Starlette and uvicorn. Anything
else (the handshake, receiving, pings, the close handshake) is uvicorn's, unchanged.

`config` is the one place the server's settings live: the CLI, the tests and the benchmarks
serve through it."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from jacameno.collab.wire import FRAMES_EXTENSION

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the transport's bound; the collaboration limits are lower


class FramesWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        # The ASGI app has not started yet (its task is only scheduled), so it will see the
        # extension. Compressed connections need every frame through the compressor: not offered.
        if scope is not None and not self.conn.extensions:
            scope["extensions"][FRAMES_EXTENSION] = self

    def write_frames(self, data: bytes) -> bool:
        if not self.handshake_complete or self.close_sent or self.disconnected:
            return False
        transport = self.transport
        if transport.is_closing():
            return False
        transport.write(data)
        return True

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()


def config(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    ws: type[asyncio.Protocol] | str = FramesWebSocketProtocol,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's settings for the app; `ws` other than ours is for tests of the plain ASGI
    path."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=ws,
        ws_max_size=MAX_MESSAGE_BYTES,
        # Compressing each frame again for every receiver costs more CPU than the small CRDT
        # updates save in bytes (and would rule out writing frames framed once per room).
        ws_per_message_deflate=False,
        log_config=None,
        access_log=False,
        # The app alone decides whose X-Forwarded-For to believe (JACAMENO_TRUSTED_PROXIES);
        # uvicorn would otherwise believe any peer on 127.0.0.1 (or FORWARDED_ALLOW_IPS).
        proxy_headers=False,
        **options,
    )


class BindError(Exception):
    """The server cannot listen where it was told to; the message says what to do."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: any free port), opened before the app starts so
    that a port in use is told at once and plainly, not after a whole startup."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"port {port} on {host} is already in use: stop what listens there, or choose "
                "another port with --port or JACAMENO_PORT"
            ) from exc
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run(app: ASGIApp, sock: socket.socket) -> None:
    """Serve `app` on the listening socket `sock` until a signal stops the server."""
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    logger.info("listening on %s", url, extra={"action": "serve.listening", "url": url})
    uvicorn.Server(config(app, host, port)).run(sockets=[sock])
