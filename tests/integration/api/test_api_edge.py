"""The HTTP layer under the app, through a real uvicorn with our protocols: a request head over
its bound gets 431, one that arrives too slowly 408, connections over the node's bound 503, an
unknown method 501, all in the API's JSON error shape; a client that leaves mid-body is no
server error; bodies sent in pieces reach the app whole, in order and apart from the next
request's on the same connection; a WebSocket to a path no collaboration endpoint serves is
refused at its handshake, as the router refuses it; a refused CORS preflight answers JSON."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from harness.audio import write_wav
from harness.ports import tcp_buffered
from harness.settings import app_settings
from harness.waiting import eventually
from jacameno.settings import Settings
from tests.integration.api.support import running
from tests.integration.collab.support import Server, serving

HEADER_TIMEOUT = 1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return app_settings(
        tmp_path,
        None,
        None,
        max_header_bytes="8192",
        header_timeout_seconds=str(HEADER_TIMEOUT),
        max_connections="8",
        cors_origins="https://studio.example",
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serving(settings) as running_server:
        yield running_server


async def _open(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(server.url)
    assert address.hostname is not None
    return await asyncio.open_connection(address.hostname, address.port)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The status, headers and JSON body of the one answer before the server closes."""
    raw = await asyncio.wait_for(reader.read(), 10)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, json.loads(body)


async def test_a_head_over_the_bound_is_refused_431(server: Server) -> None:
    reader, writer = await _open(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
    status, headers, body = await _answer(reader)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == "headers_too_large"
    writer.close()


async def test_a_head_that_never_ends_is_refused_before_it_is_all_read(server: Server) -> None:
    reader, writer = await _open(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        while sent < 100 * 1024 * 1024:
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
    except ConnectionError:
        pass
    # The server answered 431 and closed while the client was still sending: the kernel may
    # reset the connection before the client reads the answer. What the client got to send is
    # what the server read (a 64 KiB head at most) plus what the two kernels' buffers took in.
    assert sent < 1024 * 1024 + tcp_buffered()
    try:
        status, _headers, body = await _answer(reader)
    except ConnectionResetError:
        pass
    else:
        assert (status, body["error"]["code"]) == (431, "headers_too_large")
    writer.close()


async def test_a_slow_or_silent_head_is_cut_off_408(server: Server) -> None:
    slow_reader, slow = await _open(server)
    silent_reader, silent = await _open(server)
    started = time.monotonic()
    slow.write(b"GET /healthz HTTP/1.1\r\n")
    for _ in range(3):
        await asyncio.sleep(HEADER_TIMEOUT / 3)
        slow.write(b"X-Drip: 1\r\n")
    for reader in (slow_reader, silent_reader):
        status, _headers, body = await _answer(reader)
        assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert time.monotonic() - started < HEADER_TIMEOUT + 2
    # A request that completes its head in time is answered on a kept-alive connection, and
    # the next one gets the same deadline.
    reader, writer = await _open(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
    slow.close()
    silent.close()
    writer.close()


async def test_connections_over_the_bound_get_503(server: Server, settings: Settings) -> None:
    held = [await _open(server) for _ in range(settings.max_connections)]
    reader, writer = await _open(server)
    status, _headers, body = await _answer(reader)
    assert (status, body["error"]["code"]) == (503, "unavailable")
    for _reader, held_writer in held:
        held_writer.close()
    writer.close()
    # Once they are gone, the node serves again.
    await eventually(lambda: len(server.uvicorn.server_state.connections) == 0)
    assert (await server.http.get("/healthz")).status_code == 200


async def test_an_unknown_method_gets_json_501(server: Server) -> None:
    reader, writer = await _open(server)
    writer.write(b"BREW /api/projects HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await _answer(reader)
    assert status == 501
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == "not_implemented"
    writer.close()


async def test_a_client_that_leaves_mid_body_is_not_a_server_error(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jacameno.http")
    _reader, writer = await _open(server)
    writer.write(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"email": '
    )
    await writer.drain()
    writer.close()  # the head and part of the body arrived; the rest never will
    await eventually(lambda: any(r.message == "client disconnected" for r in caplog.records))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    metrics = (await server.http.get("/metrics")).text
    counted = [
        line for line in metrics.splitlines() if line.startswith("jacameno_http_errors_total")
    ]
    assert counted == [
        'jacameno_http_errors_total{method="POST",route="/api/auth/login",status="499"} 1.0'
    ]


async def test_a_body_of_many_pieces_reaches_the_app_whole_and_in_order(
    server: Server, tmp_path: Path
) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    body = write_wav(tmp_path / "take.wav", 3 * 1024 * 1024 + 4321).read_bytes()
    sizes = [1, 7, 65_536 + 3, 300_000, 13, 1_000_000]  # then 64 KiB at a time

    async def pieces() -> AsyncIterator[bytes]:  # streamed: chunked transfer encoding
        start = 0
        for size in sizes:
            yield body[start : start + size]
            start += size
        for at in range(start, len(body), 65_536):
            yield body[at : at + 65_536]

    for content in (body, pieces()):
        answer = await server.http.post(
            f"/api/projects/{project}/assets",
            content=content,
            headers={**owner.headers, "Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 201, answer.text
        stored = answer.json()
        assert (stored["sha256"], stored["size"]) == (hashlib.sha256(body).hexdigest(), len(body))
        back = await server.http.get(f"/api/assets/{stored['id']}", headers=owner.headers)
        assert back.content == body


async def test_each_request_on_a_kept_alive_connection_reads_its_own_body(
    server: Server,
) -> None:
    reader, writer = await _open(server)
    for email in ("first@example.com", "second@example.com"):
        body = json.dumps({"email": email, "password": "not the password"}).encode()
        writer.write(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for at in range(0, len(body), 5):  # the body in pieces the server may read apart
            writer.write(body[at : at + 5])
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        answer = json.loads(await asyncio.wait_for(reader.readexactly(length), 10))
        # Each body parsed as the login it is: refused for its credentials, not as malformed.
        assert head.startswith(b"HTTP/1.1 401"), (head, answer)
    writer.close()


async def test_a_websocket_to_no_endpoint_is_refused_at_its_handshake(server: Server) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    for path in ("/nowhere", f"/collab/{project}/more", "/api/projects"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws_url}{path}?token={owner.token}"):
                pass
        assert refused.value.response.status_code == 403
    async with connect(f"{server.ws_url}/collab/{project}?token={owner.token}") as socket:
        assert await asyncio.wait_for(socket.recv(), 10)  # sync step 1: served


async def test_a_refused_cors_preflight_answers_json(settings: Settings) -> None:
    async with running(settings) as api:
        refused = await api.client.options(
            "/api/projects",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["code"] == "cors_refused"
        assert "access-control-allow-origin" not in refused.headers


async def test_a_method_no_route_serves_gets_405_naming_every_allowed_method(
    settings: Settings,
) -> None:
    async with running(settings) as api:
        refused = await api.client.put("/api/projects")
        assert refused.status_code == 405
        assert refused.json()["error"]["code"] == "method_not_allowed"
        assert refused.headers["allow"] == "GET, HEAD, POST"
