"""End-to-end fixtures: a real `jacameno serve` process on a fresh database of each kind, and
JavaScript Yjs clients (Node) to point at it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from harness.server import ServerProcess, serving
from tests.e2e.clients import INSTALLED, JSClient


def require_node_modules(folder: Path) -> None:
    """Fail plainly unless `folder` has node_modules installed from its package-lock.json
    (`make test` installs them: `npm ci --prefix FOLDER`, then a `.installed` stamp)."""
    stamp = folder / "node_modules" / ".installed"
    lock = folder / "package-lock.json"
    if shutil.which("node") is None:
        raise RuntimeError("the e2e tests need Node 20 or newer (`node` is not on PATH)")
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        raise RuntimeError(
            f"{folder} has no up-to-date node_modules: run `make {stamp}` "
            f"(npm ci --prefix {folder})"
        )


@pytest.fixture(scope="session")
def node_modules() -> None:
    """The JS clients' packages (tests/e2e/js)."""
    require_node_modules(INSTALLED.parent.parent)


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    async with serving(database_url, tmp_path) as process:
        yield process


JSClients = Callable[[str], Awaitable[JSClient]]


@pytest.fixture
async def js_client(node_modules: None, tmp_path: Path) -> AsyncIterator[JSClients]:
    """Start a named Node client; every one is stopped after the test."""
    started: list[JSClient] = []

    async def start(name: str) -> JSClient:
        client = JSClient(name, tmp_path / f"{name}.stderr")
        await client.start()
        started.append(client)
        return client

    try:
        yield start
    finally:
        await asyncio.gather(*(c.close() for c in started))
        for client in started:
            print(f"--- {client.name} stderr ---\n{client.stderr_path.read_text()[-2000:]}")
