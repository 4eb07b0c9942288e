"""ASGI middleware: a request id, an access log line and metrics for every request (and a JSON
500 for anything unhandled), a bound on request bodies, CORS that refuses in JSON, and the
collaboration WebSockets' way past all of these."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from jacameno import logs
from jacameno.http.errors import ApiError, error_body
from jacameno.metrics import Metrics

logger = logging.getLogger("jacameno.http")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
REQUEST_ID_HEADER = "x-request-id"
# nginx's status for a request whose client went away before the answer: no response is sent,
# the number is for the access log and metrics.
CLIENT_CLOSED_REQUEST = 499


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            text: str = value.decode("latin-1")
            if _CLIENT_ID.match(text):
                return text
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Outermost of ours: gives the request an id (the client's `X-Request-ID` if well-formed),
    echoes it on the response, puts it on every log line, and records latency and errors by
    route template. A client that leaves before its body has arrived is the client's doing:
    logged at INFO and counted as 499, never as a 500. Logs the path but never the query
    string, headers or body (tokens and passwords travel there)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = CLIENT_CLOSED_REQUEST
            logger.info("client disconnected", extra={"action": "http.client_disconnected"})
        except Exception:
            logger.exception("unhandled error", extra={"action": "http.error"})
            if response_started:
                raise
            await _send_json(send_with_id, 500, error_body(500, "internal_error", "internal error"))
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, seconds)
            state: dict[str, Any] = scope.get("state") or {}
            logger.info(
                "request",
                extra={
                    "action": "http.request",
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "user_id": state.get("user_id"),
                },
            )
            logs.request_id.reset(token)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once when Content-Length says so, otherwise
    as soon as the streamed body grows past the bound (raised from `receive`). `larger` gives
    other bounds to the requests whose method and path match (uploads, which the handler
    streams to storage rather than holding in memory)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple[str, re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    def _bound(self, scope: Scope) -> int:
        for method, path, bound in self.larger:
            if scope["method"] == method and path.match(scope["path"]):
                return bound
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bound = self._bound(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit():
                    await _send_json(send, 400, _error(400, "bad_request", "bad Content-Length"))
                    return
                if int(value) > bound:
                    await _send_json(send, 413, _too_large(bound))
                    return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > bound:
                    body = _too_large(bound)["error"]
                    raise ApiError(413, body["code"], body["message"], body["details"])
            return message

        await self.app(scope, bounded_receive, send)


def _too_large(bound: int) -> dict[str, Any]:
    return _error(
        413,
        "payload_too_large",
        f"the request body is larger than {bound} bytes",
        {"max_bytes": bound},
    )


def _error(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return error_body(status, code, message, details)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in the API's JSON error shape (403
    `cors_refused`; Starlette answers 400 in plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(
            error_body(403, "cors_refused", bytes(response.body).decode()),
            status_code=403,
            headers=headers,
        )


class WebSocketsFirst:
    """WebSocket connections to one of `routes` (the collaboration endpoints; the list is filled
    when the app starts) go straight to the route's endpoint: past the middleware under this one,
    each of which hands a WebSocket scope on untouched, and past the router's walk of every HTTP
    route before the WebSocket ones, which took part of each join's time on the event loop
    (docs/benchmarks.md). Anything else goes on down the stack as before.

    An exception the endpoint lets out reaches the server, which logs it and closes the
    connection with 1011."""

    def __init__(self, app: ASGIApp, routes: Sequence[WebSocketRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await route.endpoint(WebSocket(scope, receive, send))
                    return
        await self.app(scope, receive, send)
