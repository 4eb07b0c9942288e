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
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from harness import accounts
from harness.accounts import User
from harness.databases import postgres_database
from harness.server import ServerProcess
from harness.settings import new_jwt_secret
from load.collab_server import START_TIMEOUT
from load.stats import percentile


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
        made: list[User] = []
        for _ in range(users):
            made.append(await accounts.new_user(client, "bench"))
            for n in range(20):
                await accounts.create_project(client, made[-1].headers, f"Song {n}")

        async def login_one(n: int) -> None:
            await accounts.login(client, made[n % users].email)

        async def list_one(n: int) -> None:
            response = await client.get("/api/projects", headers=made[n % users].headers)
            response.raise_for_status()

        await measure("POST /api/auth/login", logins, 16, login_one)
        await measure("GET /api/projects", reads, 64, list_one)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="admin DSN; a fresh database is made on it")
    parser.add_argument("--redis", help="Redis URL (with --postgres)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--reads", type=int, default=5000)
    args = parser.parse_args()
    label = "embedded (SQLite, in-process)"
    if args.postgres:
        label = "Postgres + Redis" if args.redis else "Postgres"
    print(f"JACAMENO API benchmark: {label}, argon2id t=3 m=64MiB p=4 (server defaults)")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(bench(args, Path(folder)))
    return 0


async def bench(args: argparse.Namespace, folder: Path) -> None:
    """The server on a fresh database (SQLite in `folder`, or one made on `args.postgres`) with
    argon2 at the server's default cost, then the measurements."""
    async with contextlib.AsyncExitStack() as stack:
        url = f"sqlite:///{folder / 'bench.db'}"
        extra = {"JACAMENO_AUTO_MIGRATE": "true"}
        if args.postgres:
            url = await stack.enter_async_context(
                postgres_database(args.postgres, migrate=True, prefix="jacameno_bench_api")
            )
            extra = {"JACAMENO_REDIS_URL": args.redis} if args.redis else {}
        server = ServerProcess(
            url,
            folder,
            new_jwt_secret(),
            folder / "server.log",
            extra,
            cheap_passwords=False,
            ready_path="/readyz",
            start_timeout=START_TIMEOUT,
        )
        await stack.enter_async_context(server)
        await run(server.url, args.users, args.logins, args.reads)


if __name__ == "__main__":
    sys.exit(main())
