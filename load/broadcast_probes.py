"""What load/bench_broadcast measures beside the edit load: time to synced for simultaneous
joiners with the CPU each join costs the server, and the server's own histograms read from its
`/metrics` during the window (its event loop's lag, the durable acknowledgement as it times it,
its appends)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from dbdrivers.sqlite import ReadTally
from harness.latency_proxy import delayed
from harness.server import ServerProcess
from harness.waiting import wait_until
from load import bench_collab as bench
from load import collab_server as srv
from load.collab_client import Client, Ledger
from load.js_clients import JsFleet
from load.python_stack import python_stack_server
from load.reference_server import reference_server
from load.stats import percentile

JOIN_SECONDS = "jacameno_collab_join_seconds"
GC_PAUSE = "jacameno_gc_pause_seconds"
SQLITE_READS = "jacameno_sqlite_reads_total"
SQLITE_READ_OUTCOMES = tuple(field.name for field in fields(ReadTally))
# After the last burst of joiners, how long the server's CPU is still counted: what their leaves
# and a join's work done after it answered (session logging, read models) cost lands in it.
SETTLE_SECONDS = 0.5
WINDOW_WAIT = 3600.0  # seconds: a watch is cancelled when the run ends, never timed out


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


# Simultaneous joiners: each one's seconds from the start of its connection to its sync step 2.
Join = Callable[[list[str]], Awaitable[list[float]]]


@contextlib.asynccontextmanager
async def joining(js: bool) -> AsyncIterator[Join]:
    """The joiners of a run: Python clients (`join_all`), or JavaScript yjs clients in one Node
    process (load/js/clients.mjs), fresh ones for each burst."""
    if not js:
        yield join_all
        return
    fleet = JsFleet(Ledger(), [])
    try:
        yield fleet.join
    finally:
        await fleet.close()


async def join_bursts(pid: int, bursts: list[list[str]], join: Join = join_all) -> dict[str, Any]:
    """Each burst's clients joined at the same moment, one burst after the other, then the same
    bursts again (`rejoin_`: the same people opening the same documents again a moment later, as
    after a server restart or a network blip); the times to synced, and the CPU of process `pid`
    per join from the first burst to SETTLE_SECONDS after the last (its idle CPU over that while
    included: a few hundredths of a millisecond per join)."""
    figures: dict[str, Any] = {}
    for prefix in ("", "rejoin_"):
        seconds: list[float] = []
        cpu = srv.cpu_seconds(pid)
        for urls in bursts:
            seconds += await join(urls)
        await asyncio.sleep(SETTLE_SECONDS)
        cpu = srv.cpu_seconds(pid) - cpu
        found = joined_json(seconds) | {
            "cpu_ms_per_join": round(cpu * 1000 / len(seconds), 3) if seconds else None
        }
        figures |= {f"{prefix}{key}": value for key, value in found.items()}
    return figures


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
    backend: str,
    dsn: str,
    joiners: int,
    repeats: int,
    latency: float = 0.0,
    join: Join = join_all,
) -> dict[str, Any]:
    """`repeats` times, `joiners` members open a project no one has open (its room loads
    under them), on a fresh server and database; through `latency` seconds of round trip.
    Beside the clients' times, the server's own (`jacameno_collab_join_seconds`: from the
    upgrade request's arrival to the document handed to the socket), and its CPU per join."""
    plan = bench.Plan(bench.Shape(joiners, 1, 1.0), 1.0, 0.0, joiners, backend, dsn)
    with tempfile.TemporaryDirectory(prefix="jacameno-join-") as folder:
        async with bench._database(plan, folder, False) as database:
            server = srv.server_process(database, folder)
            await srv.migrate(server.environment)
            async with server, _through(server.ws_url, latency) as ws_url:
                members = [list(range(joiners)) for _ in range(repeats)]
                accounts, projects = await srv.setup(server, joiners, members)
                watch = MetricsWatch()
                bursts = [
                    [f"{ws_url}/collab/{project}?token={a.token}" for a in accounts]
                    for project in projects
                ]
                assert server.process is not None
                async with server.http() as http:
                    watch.start = (await http.get("/metrics")).text
                    figures = await join_bursts(server.process.pid, bursts, join)
                    watch.end = (await http.get("/metrics")).text
    timed = {f"server_p{q}_ms": watch.server_ms(JOIN_SECONDS, q) for q in (50, 95)}
    return figures | timed | watch.full_collections() | watch.sqlite_reads()


async def joiners_reference(
    joiners: int, repeats: int, latency: float = 0.0, join: Join = join_all
) -> dict[str, Any]:
    """The same joiners on the y-websocket reference server (load.reference_server), a room
    nobody has open per burst."""
    async with reference_server() as server, _through(server.ws_url, latency) as ws_url:
        return await join_bursts(server.pid, _rooms(ws_url, joiners, repeats), join)


async def joiners_python_stack(
    joiners: int, repeats: int, latency: float = 0.0, join: Join = join_all
) -> dict[str, Any]:
    """The same joiners on a bare y-websocket server of our Python stack (load.python_stack),
    a room nobody has open per burst: the floor of a join for a server built on it."""
    async with python_stack_server() as server, _through(server.ws_url, latency) as ws_url:
        return await join_bursts(server.pid, _rooms(ws_url, joiners, repeats), join)


def _rooms(ws_url: str, joiners: int, repeats: int) -> list[list[str]]:
    return [[f"{ws_url}/join-{r}"] * joiners for r in range(repeats)]


@dataclass(slots=True)
class MetricsWatch:
    """A bench_collab Watch: reads the server's `/metrics` when the measured window opens and
    when it closes, for the window's quantiles of its histograms: the event loop's lag
    (`loop_lag_p99_ms`, the upper bound of the bucket that holds it: the buckets are coarse),
    the durable acknowledgement timed by the server and the rooms' appends (`server_ms`,
    interpolated within the bucket that holds the quantile, as Prometheus' histogram_quantile;
    the buckets are 0.25-1 ms wide below 6 ms)."""

    start: str = ""
    end: str = ""

    async def __call__(self, server: ServerProcess, ledger: Ledger, _rooms: object) -> None:
        async with server.http() as http:
            await wait_until(lambda: ledger.measuring, "the window opens", WINDOW_WAIT)
            self.start = (await http.get("/metrics")).text
            await wait_until(lambda: not ledger.measuring, "the window closes", WINDOW_WAIT)
            self.end = (await http.get("/metrics")).text

    def _window(self, name: str) -> tuple[list[tuple[float, float]], float]:
        """(upper bound, cumulative count) of histogram `name` over the window, in order, and
        the window's count (0: nothing observed)."""
        before, after = _buckets(self.start, name), _buckets(self.end, name)
        counts = sorted((le, count - before.get(le, 0.0)) for le, count in after.items())
        return counts, counts[-1][1] if counts else 0.0

    def full_collections(self) -> dict[str, Any]:
        """The server's full garbage collections over the window (`jacameno_gc_pause_seconds`,
        generation 2): how many, and how long they held its loop in all, in ms (None where
        the server does not export it)."""
        figures: dict[str, Any] = {}
        for key, part in (("gc_full_collections", "count"), ("gc_full_ms", "sum")):
            pattern = re.compile(rf'^{GC_PAUSE}_{part}\{{generation="2"\}} (\S+)$', re.M)
            before, after = pattern.search(self.start), pattern.search(self.end)
            value = None if before is None or after is None else float(after[1]) - float(before[1])
            figures[key] = value if value is None or part == "count" else round(value * 1000, 1)
        return figures

    def sqlite_reads(self) -> dict[str, float | None]:
        """Where the server made its SQLite reads over the window, by outcome
        (`jacameno_sqlite_reads_total`: `sqlite_reads_loop`, `..._overran`, `..._refused`,
        `..._thread`; None where the server does not export it)."""
        figures: dict[str, float | None] = {}
        for outcome in SQLITE_READ_OUTCOMES:
            pattern = re.compile(rf'^{SQLITE_READS}\{{outcome="{outcome}"\}} (\S+)$', re.M)
            before, after = pattern.search(self.start), pattern.search(self.end)
            figures[f"sqlite_reads_{outcome}"] = (
                None if before is None or after is None else float(after[1]) - float(before[1])
            )
        return figures

    @property
    def loop_lag_p99_ms(self) -> float | None:
        counts, total = self._window("jacameno_event_loop_lag_seconds")
        return next((le * 1000 for le, count in counts if count >= 0.99 * total > 0), None)

    def server_ms(self, name: str, q: float) -> float | None:
        """The window's `q`th percentile of histogram `name`, in ms (None: nothing observed,
        or it lies past the last finite bucket)."""
        counts, total = self._window(name)
        if total <= 0:
            return None
        rank = q / 100 * total
        lower, below = 0.0, 0.0
        for le, count in counts:
            if count >= rank:
                if le == float("inf"):
                    return None
                share = (rank - below) / (count - below) if count > below else 1.0
                return round((lower + (le - lower) * share) * 1000, 3)
            lower, below = le, count
        return None


def _buckets(text: str, name: str) -> dict[float, float]:
    pattern = re.compile(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', re.M)
    return {float(le): float(count) for le, count in pattern.findall(text)}
