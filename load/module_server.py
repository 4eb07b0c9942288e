"""A baseline server of the benchmarks started as `python -m MODULE PORT ...` on a free port of
127.0.0.1 (load/plain_server.py, load/python_stack.py), waited for until it accepts
connections, and stopped (SIGTERM) afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator

from harness.ports import free_port, port_open
from harness.waiting import wait_until


@contextlib.asynccontextmanager
async def module_server(module: str, *args: str) -> AsyncIterator[tuple[int, int]]:
    """`python -m module PORT *args` running; its (pid, port)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        str(port),
        *args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_until(lambda: port_open("127.0.0.1", port), f"{module} accepts connections")
        yield process.pid, port
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
