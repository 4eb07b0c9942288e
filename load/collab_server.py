"""The server side of the collaboration benchmark: a fresh database, `jacameno serve` as a real
subprocess, accounts and projects made over the REST API, and what /proc says about processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from domain.roles import EDITOR
from eventstore import EventStore, RecordedEvent
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore

PASSWORD = "collab benchmark password 1234"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def jacameno_command() -> list[str]:
    """`jacameno` beside the running interpreter (the venv's), else `python -m jacameno`."""
    script = Path(sys.executable).parent / "jacameno"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jacameno"]


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
    kind: str  # "postgres" or "sqlite"
    name: str  # database name or file path
    admin_dsn: str | None = None

    async def open_store(self) -> EventStore:
        if self.kind == "sqlite":
            return await SQLiteEventStore.open(self.name)
        return await PostgresEventStore.open(self.url)

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
        """Postgres: a durable 1-row INSERT + COMMIT every `interval` seconds on a connection
        of its own, appending (perf_counter at start, seconds) to `into` until cancelled: when
        the collaboration latency jumps, did the database's commits stall too?"""
        if self.admin_dsn is None:
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


@contextlib.asynccontextmanager
async def postgres_database(admin_dsn: str, keep: bool = False) -> AsyncIterator[Database]:
    name = f"jacameno_bench_collab_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}"))
    try:
        yield Database(url, "postgres", name, admin_dsn)
    finally:
        if not keep:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()


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


@dataclass(slots=True)
class Server:
    process: asyncio.subprocess.Process
    url: str
    log_path: Path
    environ: dict[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL after 15 s; the exit status."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_environment(database: Database, data_dir: str) -> dict[str, str]:
    """The server's settings: the run's database, a random JWT key, argon2 at its cheapest (the
    benchmark logs every user in once; login has its own benchmark, load.bench_api) and rate
    limits out of the way. Collaboration settings are the server's defaults unless the caller's
    environment sets JACAMENO_COLLAB_*."""
    return {
        **os.environ,
        "JACAMENO_DATABASE_URL": database.url,
        "JACAMENO_DATA_DIR": data_dir,
        "JACAMENO_JWT_SECRET": secrets.token_hex(32),
        "JACAMENO_AUTO_MIGRATE": "false",
        "JACAMENO_LOG_LEVEL": "WARNING",
        "JACAMENO_ARGON2_TIME_COST": "1",
        "JACAMENO_ARGON2_MEMORY_KIB": "1024",
        "JACAMENO_ARGON2_PARALLELISM": "1",
        "JACAMENO_AUTH_RATE_LIMIT": "1000000",
        "JACAMENO_AUTH_ACCOUNT_RATE_LIMIT": "1000000",
        "JACAMENO_API_RATE_LIMIT": "1000000",
    }


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


@contextlib.asynccontextmanager
async def serve(environ: dict[str, str], log_folder: str) -> AsyncIterator[Server]:
    port = free_port()
    log_path = Path(log_folder) / "server.log"
    out: IO[bytes]
    with log_path.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *jacameno_command(),
            "serve",
            "--port",
            str(port),
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path, environ)
    try:
        await _ready(server)
        yield server
    finally:
        await server.stop()


async def _ready(server: Server) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{server.url}/readyz", timeout=2)).status_code == 200:
                    return
            if server.process.returncode is not None:
                raise RuntimeError(f"the server exited at start:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in 30 s:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


# -- accounts and projects --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    token: str


async def _limited(
    http: httpx.AsyncClient, limit: asyncio.Semaphore, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    async with limit:
        response = await http.request(method, path, **kwargs)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response


async def make_user(http: httpx.AsyncClient, limit: asyncio.Semaphore, n: int) -> User:
    email = f"collab-{n}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": f"Client {n}"}
    registered = await _limited(http, limit, "POST", "/api/auth/register", json=body)
    login = await _limited(
        http, limit, "POST", "/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    return User(str(registered.json()["user"]["id"]), email, str(login.json()["access_token"]))


async def make_project(
    http: httpx.AsyncClient, limit: asyncio.Semaphore, owner: User, editors: list[User], n: int
) -> str:
    headers = {"Authorization": f"Bearer {owner.token}"}
    created = await _limited(
        http, limit, "POST", "/api/projects", json={"title": f"Load {n}"}, headers=headers
    )
    project_id = str(created.json()["id"])
    for editor in editors:
        await _limited(
            http,
            limit,
            "POST",
            f"/api/projects/{project_id}/members",
            json={"email": editor.email, "role": EDITOR},
            headers=headers,
        )
    return project_id


async def setup(
    server: Server, users: int, rooms: list[list[int]], concurrency: int = 8
) -> tuple[list[User], list[str]]:
    """`users` accounts, then one project per room, owned by the user of the room's first client
    with the room's other users as editors. `rooms[r]` lists the user index of each client."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        accounts = await asyncio.gather(*(make_user(http, limit, n) for n in range(users)))
        projects = []
        for r, members in enumerate(rooms):
            distinct = list(dict.fromkeys(members))
            owner, editors = accounts[distinct[0]], [accounts[u] for u in distinct[1:]]
            projects.append(make_project(http, limit, owner, editors, r))
        return list(accounts), list(await asyncio.gather(*projects))
