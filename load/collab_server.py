"""The server side of the collaboration benchmark: a fresh database, `jacameno serve` as a real
subprocess (harness.server), accounts and projects made over the REST API (harness.accounts),
and what /proc says about processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg

from domain.roles import EDITOR
from eventstore import EventStore, RecordedEvent
from harness import accounts
from harness.accounts import User
from harness.databases import open_store
from harness.databases import postgres_database as new_postgres_database
from harness.projecting import STANDBY, ProjectionProcess
from harness.server import ServerProcess, jacameno_command
from harness.settings import new_jwt_secret

T = TypeVar("T")

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = 1000
NO_DATABASE = "none"  # Database.kind of a server that keeps its documents in memory (reference)
START_TIMEOUT = 30.0  # seconds: a server on a large database under a loaded machine


# -- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def machine_cpu() -> tuple[float, float, float]:
    """(busy, stolen, total) CPU seconds of the whole machine since boot, over all cores; busy
    is user, nice, system, irq and softirq time, stolen is what the hypervisor took."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    total = sum(values[:8])  # without guest time, which is already in user
    return busy / CLOCK_TICK, values[7] / CLOCK_TICK, total / CLOCK_TICK


def pids_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


# -- databases --------------------------------------------------------------------------------


@dataclass(slots=True)
class Database:
    url: str  # JACAMENO_DATABASE_URL
    kind: str  # "postgres", "sqlite", or NO_DATABASE
    name: str  # database name or file path
    admin_dsn: str | None = None

    async def open_store(self) -> EventStore:
        return await open_store(self.url)

    async def backend_pids(self) -> list[int]:
        """Postgres: the backend processes connected to this database (the server's pool and
        writer); SQLite: none (its work is in the server's own process)."""
        if self.admin_dsn is None:
            return []
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.name,
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    async def counters(self) -> dict[str, int]:
        """Postgres: transactions committed in this database (read-only ones too), rows
        inserted into the log and checkpoint updates of the projection runner, so far
        (cumulative statistics, which backends flush about once a second); SQLite: nothing."""
        if self.admin_dsn is None:
            return {}
        conn = await asyncpg.connect(self.url)
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = $1)"
                " AS transactions,"
                " (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'es_events')"
                " AS events_inserted,"
                " (SELECT n_tup_upd FROM pg_stat_user_tables"
                "  WHERE relname = 'projection_checkpoints') AS checkpoint_updates",
                self.name,
            )
        finally:
            await conn.close()
        return {} if row is None else {k: int(v or 0) for k, v in dict(row).items()}

    async def probe(self, interval: float, into: list[tuple[float, float]]) -> None:
        """A durable 1-row INSERT + COMMIT every `interval` seconds, appending (perf_counter at
        start, seconds) to `into` until cancelled: when the collaboration latency jumps, did
        the database's commits stall too? Postgres: on a connection of its own; SQLite: in a
        probe file beside the log (the same disk), synchronous=FULL as the store commits."""
        if self.kind == NO_DATABASE:
            return
        if self.admin_dsn is None:
            await _probe_sqlite(str(Path(self.name).with_name("probe.db")), interval, into)
            return
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (at float8)")
            while True:
                started = time.perf_counter()
                await conn.execute("INSERT INTO bench_probe VALUES ($1)", started)
                into.append((started, time.perf_counter() - started))
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
        finally:
            await conn.close()

    async def settings(self) -> dict[str, str]:
        if self.admin_dsn is None:
            return {"sqlite_path": self.name}
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            return {
                name: str(await conn.fetchval(f"SHOW {name}"))
                for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
            }
        finally:
            await conn.close()


async def _probe_sqlite(path: str, interval: float, into: list[tuple[float, float]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    committing: asyncio.Future[None] | None = None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (at REAL)")

        def commit(at: float) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_probe VALUES (?)", (at,))
            conn.execute("COMMIT")

        while True:
            started = time.perf_counter()
            committing = asyncio.ensure_future(asyncio.to_thread(commit, started))
            await asyncio.shield(committing)
            into.append((started, time.perf_counter() - started))
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
    finally:
        # A cancel does not stop the thread: closing the connection under its commit crashed
        # the harness (a segfault in libsqlite3), so the commit ends first.
        if committing is not None:
            await asyncio.wait({committing})
        conn.close()


@contextlib.asynccontextmanager
async def postgres_database(admin_dsn: str, keep: bool = False) -> AsyncIterator[Database]:
    """A new, empty database on the server of `admin_dsn` (the server migrates it)."""
    async with new_postgres_database(admin_dsn, prefix="jacameno_bench_collab", keep=keep) as url:
        yield Database(url, "postgres", urlsplit(url).path.lstrip("/"), admin_dsn)


@contextlib.contextmanager
def sqlite_database(folder: str | None) -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="jacameno-collab-", dir=folder) as tmp:
        path = str(Path(tmp) / "collab.db")
        yield Database(f"sqlite:///{path}", "sqlite", path)


async def read_log(store: EventStore, stream: str) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    while True:
        page = await store.read_stream(stream, len(events) + 1, limit=PAGE)
        events.extend(page)
        if len(page) < PAGE:
            return events


# -- the server process -----------------------------------------------------------------------


def server_process(
    database: Database, folder: str, extra_environment: Mapping[str, str] | None = None
) -> ServerProcess:
    """`jacameno serve` on the run's database, with its data and log in `folder`: argon2 at its
    cheapest (the benchmark logs every user in once; login has its own benchmark,
    load.bench_api) and rate limits out of the way. Collaboration settings are the server's
    defaults unless the caller's environment sets JACAMENO_COLLAB_*."""
    return ServerProcess(
        database.url,
        Path(folder),
        new_jwt_secret(),
        Path(folder) / "server.log",
        extra_environment or {},
        ready_path="/readyz",
        start_timeout=START_TIMEOUT,
    )


def standby(redis_url: str) -> dict[str, str]:
    """The server's environment beside a projection process: it folds nothing, and Redis
    carries the projection process's AI edits to its rooms (jacameno.bootstrap.projecting)."""
    return {"JACAMENO_REDIS_URL": redis_url, **STANDBY}


@contextlib.asynccontextmanager
async def projection_process(server: ServerProcess, folder: str) -> AsyncIterator[int]:
    """`jacameno projections run` with `server`'s environment (`standby`), started (leading
    every projection) and stopped on exit; yields its pid, whose CPU is the server's too."""
    process = ProjectionProcess(server.environment, Path(folder) / "projections.log")
    await process.start(START_TIMEOUT)
    try:
        assert process.process is not None
        yield process.process.pid
    finally:
        await process.stop()


async def migrate(environ: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *jacameno_command(),
        "migrate",
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"jacameno migrate failed: {output.decode(errors='replace')}")
    return output.decode(errors="replace").strip()


# -- accounts and projects --------------------------------------------------------------------


async def gather_limited(coroutines: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await every coroutine, at most `limit` at a time; their results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Awaitable[T]) -> T:
        async with semaphore:
            return await coroutine

    return list(await asyncio.gather(*(one(c) for c in coroutines)))


async def setup(
    server: ServerProcess, users: int, rooms: list[list[int]], concurrency: int = 8
) -> tuple[list[User], list[str]]:
    """`users` accounts, then one project per room, owned by the user of the room's first client
    with the room's other users as editors. `rooms[r]` lists the user index of each client."""
    async with server.http(timeout=60) as http:
        made = await gather_limited(
            (accounts.new_user(http, f"collab-{n}") for n in range(users)), concurrency
        )
        projects = []
        for r, members in enumerate(rooms):
            owner, *editors = (made[u] for u in dict.fromkeys(members))
            invited = [(editor, EDITOR) for editor in editors]
            projects.append(accounts.new_project(http, owner, *invited, title=f"Load {r}"))
        return made, await gather_limited(projects, concurrency)
