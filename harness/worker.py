"""`jacameno worker` as a subprocess beside a `jacameno serve` (harness.server), on the same
database, storage and settings, for tests that kill, drain and race workers, and that hold a job
mid-run by stopping the process that runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import ChildProcess, ServerProcess, jacameno_command

READY_TIMEOUT = 60.0  # seconds to import the numeric stack on a loaded two-core machine


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
        """Start the worker and wait until it is ready to claim (its task process warm)."""
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
        await self.logged("worker.ready", READY_TIMEOUT)

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def terminate(self) -> None:
        """SIGTERM without waiting: the worker drains (`stop` waits for its end)."""
        assert self.process is not None, "not started"
        self.process.terminate()

    def task_process(self) -> int:
        """The pid of the worker's one task process (jacameno.ai.slot's child)."""
        found = []
        for thread in Path(f"/proc/{self.pid}/task").iterdir():
            for child in (thread / "children").read_text().split():
                with contextlib.suppress(FileNotFoundError):
                    if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                        found.append(int(child))
        assert len(found) == 1, f"the worker has {len(found)} task processes"
        return found[0]

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[int]:
        """Stop the worker's task process (SIGSTOP) for the block: a job the worker claims
        meanwhile stays running, fetched and handed over but not worked on, as long as the test
        needs; the worker itself goes on (renews, sees a cancel, drains, dies). Yields the held
        pid; resumed (SIGCONT) at the end unless it was killed meanwhile."""
        pid = self.task_process()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def is_gone(pid: int) -> bool:
    """Whether process `pid` has ended (reaped, or a zombie waiting to be)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
