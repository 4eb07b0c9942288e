"""`jacameno projections run` as a subprocess beside `jacameno serve` processes with
`JACAMENO_PROJECTIONS=standby` (harness.server): the same database, Redis and settings. Started
means it has logged `projections.started` and holds every projection's lock (it leads them all,
so a server started after it stands by)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from harness.server import ChildProcess, jacameno_command
from harness.waiting import wait_until

STANDBY = {"JACAMENO_PROJECTIONS": "standby"}


async def locks_held(database_url: str) -> int:
    """The advisory locks granted in the database right now (the runners' per-projection locks:
    sqldb.locks)."""
    conn = await asyncpg.connect(database_url)
    try:
        held: int = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await conn.close()
    return held


@dataclass(eq=False)
class ProjectionProcess(ChildProcess):
    """One `jacameno projections run` with `environment` (a server's, say), logging to `log`."""

    environment: Mapping[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = field(init=False, default=None)

    async def start(self, timeout: float = 20.0) -> None:
        environment = {**self.environment, "JACAMENO_LOG_LEVEL": "INFO"}
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *jacameno_command(),
                "projections",
                "run",
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        await self.logged("projections.started", timeout)
        url = environment["JACAMENO_DATABASE_URL"]
        names = self.projections()

        async def leading() -> bool:
            return await locks_held(url) >= len(names)

        await wait_until(leading, "the projection process leads every projection", timeout)

    def projections(self) -> list[str]:
        """The projections the process said it runs (its last `projections.started`)."""
        started = [e for e in self.entries() if e.get("action") == "projections.started"]
        return list(started[-1]["projections"]) if started else []
