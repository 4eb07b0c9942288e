"""How JACAMENO is served: uvicorn with one WebSocket protocol and one HTTP protocol of ours.

`FramesWebSocketProtocol` is uvicorn's sans-I/O WebSocket protocol (websockets' parser) that also
offers the ASGI extension `jacameno.websocket.frames` (jacameno.collab.wire): the collaboration
endpoints write frames they framed once for a whole room straight to each socket's transport,
instead of one `websocket.send` per message per receiver through Starlette and uvicorn, and it
stamps when each socket's bytes arrive (`received_at`: the durable acknowledgement's timing,
jacameno.collab.timings). Anything else (the handshake, receiving, pings, the close handshake) is
uvicorn's, unchanged.

`BoundedHttpProtocol` is uvicorn's httptools protocol with what httptools itself does not bound
(uvicorn's `h11_max_incomplete_event_size` applies to h11 only): the size of a request's head
(request line and headers; over it: 431) and the time it may take to arrive (then 408), and the
number of connections this node holds open (over it: 503 at once, WebSocket upgrades included,
which uvicorn's `limit_concurrency` lets through). Each answer is the API's JSON error and closes
the connection. The limits are settings (docs/security.md).

`config` is the one place the server's settings live: the CLI, the tests and the benchmarks
serve through it."""

from __future__ import annotations

import asyncio
import errno
import gc
import http
import json
import logging
import socket
import sys
import time
from typing import Any, ClassVar

import httptools
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from jacameno.collab.wire import FRAMES_EXTENSION
from jacameno.http.errors import error_body
from jacameno.settings import HEADER_TIMEOUT_SECONDS, MAX_CONNECTIONS, MAX_HEADER_BYTES, Settings

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the transport's bound; the collaboration limits are lower


class FramesWebSocketProtocol(WebSocketsSansIOProtocol):
    received_at = 0.0  # time.perf_counter() when the last bytes arrived

    def data_received(self, data: bytes) -> None:
        self.received_at = time.perf_counter()
        super().data_received(data)

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


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and uvicorn answers the client
    through `send_400_response`, which we turn into 431."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """Bounds set per server by `bounded_http_protocol`."""

    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    header_timeout: ClassVar[float] = HEADER_TIMEOUT_SECONDS
    max_connections: ClassVar[int] = MAX_CONNECTIONS

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0  # received since the head began, while it is incomplete
    _head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(503, "unavailable", "too many connections; retry later")
            return
        self._await_head()  # the first request's head, from the first byte on

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self._head_timer is not None
        if waiting:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head that is still incomplete after this many bytes is refused without waiting for
        # its end (httptools keeps a partial header value in memory until it ends).
        if waiting and self._head_timer is not None and self._head_bytes > self.max_header_bytes:
            self._head_too_large = True
            self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._await_head()  # a later request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._head_arrived()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools refused (called inside its `except
        HttpParserError`), in the API's JSON shape: 431 for a head over the bound, 501 for a
        method httptools does not know, 400 otherwise."""
        if self._head_too_large:
            self._refuse(
                431,
                "headers_too_large",
                f"the request line and headers are larger than {self.max_header_bytes} bytes",
            )
        elif isinstance(sys.exc_info()[1], httptools.HttpParserInvalidMethodError):
            self._refuse(501, "not_implemented", "unknown request method")
        else:
            self._refuse(400, "bad_request", "invalid HTTP request")

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_late)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(
                408,
                "request_timeout",
                f"the request headers did not arrive within {self.header_timeout:g} seconds",
            )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with the API's JSON error and close the connection. (These answers never reach
        the app: they are logged here, not counted in its metrics.)"""
        logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "request refused",
            extra={"action": "http.refused", "status": status, "code": code},
        )
        self._head_arrived()
        body = json.dumps(error_body(status, code, message), separators=(",", ":")).encode()
        phrase = http.HTTPStatus(status).phrase
        head = [f"HTTP/1.1 {status} {phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_http_protocol(
    *, max_header_bytes: int, header_timeout: float, max_connections: int
) -> type[BoundedHttpProtocol]:
    """`BoundedHttpProtocol` with these bounds (uvicorn makes one protocol object per
    connection from the class it is given)."""
    return type(
        "BoundedHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "header_timeout": header_timeout,
            "max_connections": max_connections,
        },
    )


def config(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    settings: Settings | None = None,
    ws: type[asyncio.Protocol] | str = FramesWebSocketProtocol,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's settings for the app, with the HTTP layer's bounds from `settings` (their
    defaults without); `ws` other than ours is for tests of the plain ASGI path."""
    http_protocol = (
        BoundedHttpProtocol
        if settings is None
        else bounded_http_protocol(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout_seconds,
            max_connections=settings.max_connections,
        )
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol,
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


def freeze_heap() -> None:
    """Leave what the process holds once it has started (its modules, the app, the services
    and what they keep) out of the garbage collector's work from now on. A full collection
    walks every object the collector tracks: about 80,000 in a server just started, which held
    the event loop, and with it every socket of the node, for 25-60 ms each time
    (docs/benchmarks.md). What is frozen is never collected, so only what has just survived a
    full collection is: what a started server keeps for its life."""
    gc.collect()
    gc.freeze()


class _Server(uvicorn.Server):
    """uvicorn's server, whose heap is frozen once the app has started (`freeze_heap`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            freeze_heap()


def run(app: ASGIApp, settings: Settings, sock: socket.socket) -> None:
    """Serve `app` on the listening socket `sock` until a signal stops the server."""
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    logger.info("listening on %s", url, extra={"action": "serve.listening", "url": url})
    _Server(config(app, host, port, settings=settings)).run(sockets=[sock])
