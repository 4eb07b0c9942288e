"""REST API benchmark: `python -m load.bench_api [--postgres DSN --redis URL]`.

Starts `jacameno serve` in a subprocess on a free port (embedded SQLite by default; Postgres +
Redis when given), then measures, from concurrent httpx clients:

- login: argon2id is slow on purpose. The cost is the server's default (RFC 9106's second
  recommendation: time_cost=3, memory 64 MiB, parallelism 4), at most 4 hashes at once per process.
- an authenticated `GET /api/projects` (20 projects per user, first page).

Prints requests/s and p50/p99 latency for each."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from load.collab_server import serve
from load.stats import percentile
from sqldb.migrate import migrate_postgres

PASSWORD = "benchmark password 1234"


async def measure(
    name: str, total: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> dict[str, float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)

    async def worker() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            started = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    figures = {
        "requests": total,
        "concurrency": concurrency,
        "rps": total / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }
    print(
        f"{name:<28} {concurrency:>4} clients  {figures['rps']:>9.1f} req/s"
        f"  p50 {figures['p50_ms']:>7.1f} ms  p99 {figures['p99_ms']:>7.1f} ms"
    )
    return figures


async def run(base: str, users: int, logins: int, reads: int) -> None:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        emails = [f"bench-{uuid.uuid4().hex[:10]}@example.com" for _ in range(users)]
        tokens: list[str] = []
        for email in emails:
            response = await client.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": "Bench"},
            )
            response.raise_for_status()
            login = await client.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            tokens.append(login.json()["access_token"])
            headers = {"Authorization": f"Bearer {tokens[-1]}"}
            for n in range(20):
                created = await client.post(
                    "/api/projects", json={"title": f"Song {n}"}, headers=headers
                )
                created.raise_for_status()

        async def login_one(n: int) -> None:
            response = await client.post(
                "/api/auth/login", json={"email": emails[n % users], "password": PASSWORD}
            )
            response.raise_for_status()

        async def list_one(n: int) -> None:
            response = await client.get(
                "/api/projects", headers={"Authorization": f"Bearer {tokens[n % users]}"}
            )
            response.raise_for_status()

        await measure("POST /api/auth/login", logins, 16, login_one)
        await measure("GET /api/projects", reads, 64, list_one)


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_postgres(dsn: str) -> Iterator[str]:
    """A new migrated database on the server of `dsn`, dropped afterwards."""
    name = f"jacameno_bench_api_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(dsn, f"CREATE DATABASE {name}"))
    try:
        url = urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
        asyncio.run(migrate_postgres(url))
        yield url
    finally:
        asyncio.run(_admin(dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="admin DSN; a fresh database is made on it")
    parser.add_argument("--redis", help="Redis URL (with --postgres)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--reads", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        environ = {
            "JACAMENO_DATA_DIR": folder,
            "JACAMENO_JWT_SECRET": uuid.uuid4().hex * 2,
            "JACAMENO_AUTH_RATE_LIMIT": "1000000",
            "JACAMENO_AUTH_ACCOUNT_RATE_LIMIT": "1000000",
            "JACAMENO_API_RATE_LIMIT": "1000000",
            "JACAMENO_DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}",
        }
        label = "embedded (SQLite, in-process)"
        if args.postgres:
            environ["JACAMENO_DATABASE_URL"] = stack.enter_context(fresh_postgres(args.postgres))
            label = "Postgres"
            if args.redis:
                environ["JACAMENO_REDIS_URL"] = args.redis
                label += " + Redis"
        print(f"JACAMENO API benchmark: {label}, argon2id t=3 m=64MiB p=4 (server defaults)")
        asyncio.run(bench(environ, folder, args.users, args.logins, args.reads))
    return 0


async def bench(environ: dict[str, str], folder: str, users: int, logins: int, reads: int) -> None:
    env = {**os.environ, **environ, "JACAMENO_LOG_LEVEL": "WARNING"}
    async with serve(env, folder) as server:
        await run(server.url, users, logins, reads)


if __name__ == "__main__":
    sys.exit(main())
