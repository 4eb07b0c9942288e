"""`jacameno worker` as a subprocess beside a `jacameno serve` (harness.server), on the same
database, storage and settings, for tests that kill, drain and race workers."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import ChildProcess, ServerProcess, jacameno_command


@dataclass(eq=False)
class WorkerProcess(ChildProcess):
    """One `jacameno worker` with the environment of `server` plus `extra_environment`
    (JACAMENO_AI_* settings), logging to `log`. `stop` is SIGTERM (the worker drains), then
    SIGKILL after its timeout; `kill` leaves the worker's lease to run out."""

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
