"""`jacameno worker` as a subprocess beside a `jacameno serve` (harness.server), on the same
database, storage and settings, for tests that kill, drain and race workers."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import ServerProcess, jacameno_command


@dataclass(eq=False)
class WorkerProcess:
    """One `jacameno worker` with the environment of `server` plus `extra_environment`
    (JACAMENO_AI_* settings), logging to `log`."""

    server: ServerProcess
    log: Path
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = field(init=False, default=None)

    async def start(self) -> None:
        environment = {**self.server.environment, **self.extra_environment}
        environment["JACAMENO_LOG_LEVEL"] = "INFO"
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *jacameno_command(),
                "worker",
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    async def kill(self) -> None:
        """SIGKILL: the worker's lease is left to run out."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the worker drains), then SIGKILL after `timeout` seconds; the exit status."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
