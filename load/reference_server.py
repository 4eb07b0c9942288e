"""The y-websocket@2.1.0 reference server, started from npm: `python -m load.reference_server`.

Its bundled server (`bin/server.cjs`, in memory, no authentication: every path is a room) is
what load/bench_broadcast measures beside ours, in the same session. Installed, as
load/reference/package-lock.json pins it, by `make load/reference/node_modules/.installed`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvloop

from harness.waiting import wait_until

FOLDER = Path(__file__).resolve().parent / "reference"
SERVER = FOLDER / "node_modules" / "y-websocket" / "bin" / "server.cjs"
INSTALL = "make load/reference/node_modules/.installed"


@dataclass(frozen=True, slots=True)
class ReferenceServer:
    pid: int
    url: str  # http://host:port

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def reference_server(log: Path | None = None) -> AsyncIterator[ReferenceServer]:
    """The reference server on a free port of 127.0.0.1, stopped (SIGTERM) afterwards.
    RuntimeError if node or the package is missing."""
    node = shutil.which("node")
    if node is None or not SERVER.exists():
        raise RuntimeError(f"the y-websocket reference server is not installed: run `{INSTALL}`")
    port = _free_port()
    output = open(log, "wb") if log is not None else None  # noqa: SIM115, ASYNC230
    process = await asyncio.create_subprocess_exec(
        node,
        str(SERVER),
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=output or asyncio.subprocess.DEVNULL,
        stderr=output or asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: _accepts(port), "the reference server listens", 30)
        yield ReferenceServer(process.pid, f"http://127.0.0.1:{port}")
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        if output is not None:
            output.close()


async def _serve() -> None:
    async with reference_server() as server:
        print(f"y-websocket@2.1.0 reference server at {server.ws_url} (pid {server.pid})")
        print("every path is a room; Ctrl-C stops it", flush=True)
        await asyncio.Event().wait()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
