"""`jacameno serve` as a real process with Python Yjs clients: edits converge, and everything
acknowledged (echoed) survives a SIGKILL of the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pycrdt import Text

from tests.integration.collab.support import Server, YClient, eventually


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _process(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jacameno", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the server did not become ready")
            await asyncio.sleep(0.05)


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "JACAMENO_ENV": "test",
        "JACAMENO_DATA_DIR": str(tmp_path / "data"),
        "JACAMENO_JWT_SECRET": "e2e-secret-0123456789abcdef0123456789",
        "JACAMENO_ARGON2_TIME_COST": "1",
        "JACAMENO_ARGON2_MEMORY_KIB": "1024",
        "JACAMENO_ARGON2_PARALLELISM": "1",
        "JACAMENO_LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def _server(url: str) -> AsyncIterator[Server]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield Server(None, url, http, None)  # type: ignore[arg-type]


async def test_acknowledged_edits_survive_a_sigkill(
    environment: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with _process(environment, port, log) as proc:
        await _ready(url)
        async with _server(url) as server:
            alice, bob = await server.user("alice"), await server.user("bob")
            project = await server.project(alice, (bob, "editor"))
            a = await server.client(project, alice)
            b = await server.client(project, bob)
            await a.sync()
            await b.sync()
            for i in range(50):
                client = a if i % 2 else b
                client.doc.get("lyrics", type=Text).insert(0, f"{i};")
            await eventually(lambda: len(a.echoes) == len(b.echoes) == 50)
            assert a.content() == b.content()
            acknowledged = a.content()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            await a.wait_closed()
    with _process(environment, port, log):
        await _ready(url)
        async with _server(url) as server:
            fresh = YClient(server, project, alice.token)
            await fresh.connect()
            await fresh.sync()
            assert fresh.content() == acknowledged
            await fresh.close()
