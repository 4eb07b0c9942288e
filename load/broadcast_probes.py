"""What load/bench_broadcast measures beside the edit load: time to synced for simultaneous
joiners, and the server's own event-loop lag read from its `/metrics` during the window."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harness.latency_proxy import delayed
from harness.server import ServerProcess
from harness.waiting import wait_until
from load import bench_collab as bench
from load import collab_server as srv
from load.collab_client import Client, Ledger
from load.reference_server import reference_server
from load.stats import percentile

WINDOW_WAIT = 3600.0  # seconds: a watch is cancelled when the run ends, never timed out
BUCKET = re.compile(r'^jacameno_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


async def join_all(urls: list[str]) -> list[float]:
    """Connect one client per URL at the same moment; each one's seconds from the start of its
    connection to its sync step 2 (synced)."""
    ledger = Ledger()
    started_ns = time.perf_counter_ns()
    clients = [
        Client(ledger, url, 0, i, seed=i, started_ns=started_ns) for i, url in enumerate(urls)
    ]

    async def one(client: Client) -> float:
        started = time.perf_counter()
        await client.connect()
        return time.perf_counter() - started

    try:
        return list(await asyncio.gather(*(one(c) for c in clients)))
    finally:
        await asyncio.gather(*(c.close() for c in clients if c.ws is not None))


def joined_json(seconds: list[float]) -> dict[str, Any]:
    def ms(q: float) -> float | None:
        return round(percentile(seconds, q) * 1000, 3) if seconds else None

    return {"joiners": len(seconds), "p50_ms": ms(50), "p95_ms": ms(95), "max_ms": ms(100)}


@contextlib.asynccontextmanager
async def _through(ws_url: str, latency: float) -> AsyncIterator[str]:
    """`ws_url`, or with `latency` seconds (a round trip) the URL of a proxy that adds it."""
    if latency <= 0:
        yield ws_url
        return
    address = urlsplit(ws_url)
    assert address.hostname is not None
    assert address.port is not None
    async with delayed(address.hostname, address.port, latency / 2) as port:
        yield f"{address.scheme}://127.0.0.1:{port}{address.path}"


async def joiners_ours(
    backend: str, dsn: str, joiners: int, repeats: int, latency: float = 0.0
) -> dict[str, Any]:
    """`repeats` times, `joiners` members open a project no one has open (its room loads
    under them), on a fresh server and database; through `latency` seconds of round trip."""
    plan = bench.Plan(bench.Shape(joiners, 1, 1.0), 1.0, 0.0, joiners, backend, dsn)
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="jacameno-join-") as folder:
        async with bench._database(plan, folder, False) as database:
            server = srv.server_process(database, folder)
            await srv.migrate(server.environment)
            async with server, _through(server.ws_url, latency) as ws_url:
                members = [list(range(joiners)) for _ in range(repeats)]
                accounts, projects = await srv.setup(server, joiners, members)
                for project in projects:
                    urls = [f"{ws_url}/collab/{project}?token={a.token}" for a in accounts]
                    seconds += await join_all(urls)
    return joined_json(seconds)


async def joiners_reference(joiners: int, repeats: int, latency: float = 0.0) -> dict[str, Any]:
    seconds: list[float] = []
    async with reference_server() as server, _through(server.ws_url, latency) as ws_url:
        for r in range(repeats):
            seconds += await join_all([f"{ws_url}/join-{r}"] * joiners)
    return joined_json(seconds)


@dataclass(slots=True)
class LoopLagWatch:
    """A bench_collab Watch: reads the server's loop-lag histogram when the measured window
    opens and when it closes; `p99_ms` is the upper bound of the bucket holding the window's
    99th percentile (the histogram's resolution, no finer)."""

    start: dict[float, float] = field(default_factory=dict)
    end: dict[float, float] = field(default_factory=dict)

    async def __call__(self, server: ServerProcess, ledger: Ledger) -> None:
        async with server.http() as http:
            await wait_until(lambda: ledger.measuring, "the window opens", WINDOW_WAIT)
            self.start = _buckets((await http.get("/metrics")).text)
            await wait_until(lambda: not ledger.measuring, "the window closes", WINDOW_WAIT)
            self.end = _buckets((await http.get("/metrics")).text)

    @property
    def p99_ms(self) -> float | None:
        if not self.end:
            return None
        counts = {le: self.end[le] - self.start.get(le, 0.0) for le in self.end}
        total = counts.get(float("inf"), 0.0)
        if total <= 0:
            return None
        for le in sorted(counts):
            if counts[le] >= 0.99 * total:
                return le * 1000
        return None


def _buckets(text: str) -> dict[float, float]:
    return {float(le): float(count) for le, count in BUCKET.findall(text)}
