"""The per-address login limit counts the real client address (issue 8, finding 6): a served
node believes `X-Forwarded-For` only from the peers in JACAMENO_TRUSTED_PROXIES, and none by
default (uvicorn's own default would believe any peer on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness.server import ServerProcess

LIMIT = 3


@pytest.fixture
async def serve() -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        await server.stop()
        print(f"--- server log ---\n{server.log_tail()}")


async def start(database_url: str, tmp_path: Path, **environment: str) -> ServerProcess:
    server = ServerProcess(
        database_url,
        data_dir=tmp_path / "data",
        jwt_secret="e2e-" + uuid.uuid4().hex,
        log=tmp_path / f"server-{uuid.uuid4().hex[:6]}.log",
        extra_environment={
            "JACAMENO_AUTH_RATE_LIMIT": str(LIMIT),
            **{f"JACAMENO_{k.upper()}": v for k, v in environment.items()},
        },
    )
    await server.start()
    return server


async def attempt(http: httpx.AsyncClient, forwarded_for: str) -> int:
    response = await http.post(
        "/api/auth/login",
        json={"email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    database_url: str, tmp_path: Path, serve: list[ServerProcess]
) -> None:
    server = await start(database_url, tmp_path)
    serve.append(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        codes = [await attempt(http, f"203.0.113.{n}") for n in range(1, 2 * LIMIT + 1)]
    assert codes == [401] * LIMIT + [429] * LIMIT


async def test_a_trusted_proxy_forwards_the_client_address(
    database_url: str, tmp_path: Path, serve: list[ServerProcess]
) -> None:
    server = await start(database_url, tmp_path, trusted_proxies="127.0.0.0/8, 10.9.0.1")
    serve.append(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        # Each client has its own budget...
        codes = [await attempt(http, f"203.0.113.{n}") for n in range(1, 2 * LIMIT + 1)]
        assert codes == [401] * 2 * LIMIT
        # ...and one client is limited, whatever it writes in front of what the proxies add:
        # the address is the rightmost one that is not a trusted proxy.
        chain = [await attempt(http, f"198.51.100.{n}, 192.0.2.7, 10.9.0.1") for n in range(5)]
        assert chain == [401] * LIMIT + [429] * 2
