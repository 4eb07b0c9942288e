"""Play ingestion benchmark: `python -m load.bench_catalog [--sqlite] [--nodes N]`.

Starts `jacameno serve` (N processes on one fresh Postgres database by default; one on SQLite
with `--sqlite`), publishes `--tracks` tracks, then for `--seconds` seconds posts anonymous
plays (`POST /api/tracks/{id}/plays` with a device id) from `--client-processes` processes of
`--connections` keep-alive HTTP connections each (load/rawhttp.py: a client that costs tens of
microseconds per request, where httpx's millisecond made the clients the bottleneck), spread
over the nodes. The same clients then post to the plain Starlette server
(load/plain_server.py), which answers 202 and records nothing: the ceiling of this machine's
Python web stack for them. It measures:

- play ingestion: plays accepted (202) per second, and their p50/p99 latency (target on
  Postgres: at least 5,000 plays/s, issue 12);
- the catalog projection's lag at that rate: every 100 ms, each node's `/metrics` gauge
  `jacameno_projection_lag_seconds{projection="catalog"}` (the largest of the nodes'), p50/p99/max
  over the window (target: p99 at most 1 s), and how long the projection took to reach the log's
  head after the last play;
- CPU per 1,000 plays accepted: the server processes' (all nodes) and, on Postgres, the
  database backends' of the run (every backend connected to the bench's database, sampled at
  the window's start and end): a figure the machine's other load moves far less than the rate;
- that the counts are right: every play of the window falls within 30 minutes, so the catalog
  must count exactly one play per distinct (track, device) pair the clients sent.

`--fold` measures the catalog fold alone instead (load/catalog_fold.py): whether the read model
keeps up with a rate, whatever the HTTP side manages.

Each client process draws devices from its own range, so the pairs of two processes never
collide. The figures belong in docs/benchmarks.md only when measured on a quiet machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from harness import accounts
from harness.accounts import bearer, unique_email
from harness.audio import wav_bytes
from harness.databases import postgres_database
from harness.server import ServerProcess
from harness.settings import new_jwt_secret
from harness.waiting import wait_until
from load import catalog_fold, rawhttp
from load.collab_server import START_TIMEOUT, cpu_seconds, pids_cpu, projection_process, standby
from load.plain_server import plain_server
from load.stats import percentile

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
LAG_METRIC = "jacameno_projection_lag_seconds"
SAMPLE_INTERVAL = 0.1
SAMPLE_TIMEOUT = 2.0  # seconds a node has to answer /metrics before the sample counts as unanswered
TARGET_PLAYS_PER_SECOND = 5_000
TARGET_LAG_P99 = 1.0
DRAIN_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Load:
    urls: list[str]
    tracks: list[str]
    connections: int
    seconds: float
    devices: int
    start_at: float  # time.time() at which every client process starts posting
    batch: int = 0  # plays per request to POST /api/plays; 0: one per POST /api/tracks/{id}/plays
    interval: float = 0.0  # seconds between one connection's requests (0: as fast as answered)


def _say(text: str) -> None:
    print(f"[catalog {time.perf_counter() - _T0:7.1f} s] {text}", file=sys.stderr, flush=True)


_T0 = time.perf_counter()


# -- the clients (one event loop per process) -------------------------------------------------


async def _post_plays(load: Load, process: int) -> dict[str, Any]:
    latencies: list[float] = []
    pairs: set[tuple[int, int]] = set()
    errors: dict[str, int] = {}
    plays = [0]
    rng = random.Random(process)
    await asyncio.sleep(max(0.0, load.start_at - time.time()))
    deadline = time.perf_counter() + load.seconds

    async def connection(n: int) -> None:
        http = rawhttp.Connection(load.urls[n % len(load.urls)])
        due = time.perf_counter() + rng.uniform(0, load.interval)
        try:
            while time.perf_counter() < deadline:
                if load.interval:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    due += load.interval
                drawn = [
                    (rng.randrange(len(load.tracks)), rng.randrange(load.devices))
                    for _ in range(load.batch or 1)
                ]
                path, body = _request(load, process, drawn)
                started = time.perf_counter()
                try:
                    status, _ = await http.post_json(path, body)
                except (rawhttp.HttpError, OSError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                if status != 202:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                plays[0] += len(drawn)
                pairs.update(drawn)
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(load.connections)))
    elapsed = time.perf_counter() - started
    return {
        "latencies": latencies,
        "plays": plays[0],
        "pairs": len(pairs),
        "errors": errors,
        "seconds": elapsed,
    }


def _request(load: Load, process: int, drawn: list[tuple[int, int]]) -> tuple[str, bytes]:
    """The path and body of one request for the (track, device) pairs drawn."""
    if not load.batch:
        track, device = drawn[0]
        body = b'{"device_id":"bench-%d-%08d"}' % (process, device)
        return f"/api/tracks/{load.tracks[track]}/plays", body
    plays = [
        {"track_id": load.tracks[track], "device_id": f"bench-{process}-{device:08}"}
        for track, device in drawn
    ]
    return "/api/plays", json.dumps({"plays": plays}).encode()


def _client_process(load: Load, process: int, results: Any) -> None:
    results.put(uvloop.run(_post_plays(load, process)))


async def run_clients(load: Load, processes: int) -> list[dict[str, Any]]:
    """Post plays from `processes` client processes as `load` says; what each found."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    started = [
        context.Process(target=_client_process, args=(load, n, results)) for n in range(processes)
    ]
    for process in started:
        process.start()
    finished = [await asyncio.to_thread(results.get) for _ in started]
    for process in started:
        process.join()
    return finished


def _load(args: argparse.Namespace, urls: list[str], tracks: list[str]) -> Load:
    """The clients' load as the arguments say, starting two seconds from now."""
    return Load(
        urls,
        tracks,
        args.connections,
        args.seconds,
        args.devices,
        time.time() + 2.0,
        args.batch,
        _interval(args),
    )


def _interval(args: argparse.Namespace) -> float:
    """Seconds between one connection's requests for `--rate` plays/s in all (0: unpaced)."""
    if not args.rate:
        return 0.0
    return float((args.batch or 1) * args.connections * args.client_processes / args.rate)


def rate(finished: list[dict[str, Any]]) -> tuple[int, float]:
    """Plays accepted and the longest client's window, in seconds."""
    return sum(r["plays"] for r in finished), max(r["seconds"] for r in finished)


async def baseline(args: argparse.Namespace, folder: Path, tracks: list[str]) -> float:
    """Plays per second the same clients get from the plain Starlette server (load/plain_server.py),
    which answers 202 and records nothing: the ceiling of this machine's Python web stack."""
    async with plain_server(folder) as url:
        load = _load(args, [url], tracks)
        plays, seconds = rate(await run_clients(load, args.client_processes))
    return round(plays / seconds, 1) if seconds else 0.0


# -- the servers, the catalog and the lag ------------------------------------------------------


async def backend_pids(database_url: str) -> list[int]:
    """The Postgres backends connected to the bench's database (none for SQLite)."""
    if database_url.startswith("sqlite:"):
        return []
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


class CpuWindow:
    """CPU seconds the servers and the database's backends spend between `start` and `stop`."""

    def __init__(
        self, database_url: str, nodes: list[ServerProcess], projector: int | None = None
    ) -> None:
        self._url = database_url
        # A projection process of its own folds for the servers: its CPU is theirs, and
        # `projector` is its share.
        self._projector = projector
        self._servers = [n.pid for n in nodes] + ([] if projector is None else [projector])
        self._start: dict[int, float] = {}
        self.server = 0.0
        self.projector = 0.0
        self.database = 0.0

    async def start(self) -> None:
        self._start = {pid: cpu_seconds(pid) for pid in self._servers}
        for pid in await backend_pids(self._url):
            self._start[pid] = pids_cpu([pid])

    async def stop(self) -> None:
        self.server = sum(cpu_seconds(pid) - self._start[pid] for pid in self._servers)
        if self._projector is not None:
            self.projector = cpu_seconds(self._projector) - self._start[self._projector]
        for pid in await backend_pids(self._url):
            self.database += pids_cpu([pid]) - self._start.get(pid, 0.0)


@contextlib.asynccontextmanager
async def servers(
    args: argparse.Namespace, folder: Path
) -> AsyncIterator[tuple[list[ServerProcess], int | None]]:
    """`args.nodes` started servers on one fresh database, and with `--projections process`
    the pid of the projection process that folds for them (the servers stand by)."""
    async with contextlib.AsyncExitStack() as stack:
        if args.sqlite:
            url, extra = f"sqlite:///{folder / 'bench.db'}", {"JACAMENO_AUTO_MIGRATE": "true"}
        else:
            url = await stack.enter_async_context(
                postgres_database(args.dsn, migrate=True, prefix="jacameno_bench_catalog")
            )
            extra = standby(args.redis) if args.projections == "process" else {}
        secret = new_jwt_secret()
        started = []
        for node in range(1 if args.sqlite else args.nodes):
            data = folder / f"node{node}"
            data.mkdir()
            server = ServerProcess(
                url,
                data,
                secret,
                data / "server.log",
                extra,
                ready_path="/readyz",
                start_timeout=START_TIMEOUT,
            )
            started.append(await stack.enter_async_context(server))
        projector = None
        if args.projections == "process":
            projector = await stack.enter_async_context(projection_process(started[0], str(folder)))
        yield started, projector


async def publish_tracks(base: str, count: int) -> list[str]:
    """`count` public tracks of one project, from one uploaded WAV."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        email = unique_email("bench")
        await accounts.register(http, email)
        headers = bearer((await accounts.login(http, email))["access_token"])
        project = await accounts.create_project(http, headers, "Bench")
        uploaded = await http.post(
            f"/api/projects/{project['id']}/assets",
            content=wav_bytes(seconds=1.0),
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        uploaded.raise_for_status()
        asset_id = uploaded.json()["id"]
        tracks = []
        for n in range(count):
            body = {
                "project_id": project["id"],
                "asset_id": asset_id,
                "title": f"Bench {n}",
                "artists": ["Bench"],
                "genre": "Test",
                "visibility": "public",
            }
            response = await http.post("/api/tracks", json=body, headers=headers)
            response.raise_for_status()
            tracks.append(response.json()["id"])
        return tracks


async def catalog_lag(http: httpx.AsyncClient) -> float:
    response = await http.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        if family.name == LAG_METRIC:
            for sample in family.samples:
                if sample.labels.get("projection") == "catalog":
                    return float(sample.value)
    return 0.0


async def sample_lag(bases: list[str], until: float, samples: list[float | None]) -> None:
    """The catalog's lag (the largest any node reports) every SAMPLE_INTERVAL until `until`;
    None for a sample some node did not answer within SAMPLE_TIMEOUT (a saturated server: its
    lag is unknown then, and counted apart)."""
    clients = [httpx.AsyncClient(base_url=base, timeout=SAMPLE_TIMEOUT) for base in bases]
    try:
        while time.time() < until:
            due = time.perf_counter() + SAMPLE_INTERVAL
            try:
                samples.append(max(await asyncio.gather(*(catalog_lag(c) for c in clients))))
            except httpx.TimeoutException:
                samples.append(None)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
    finally:
        for client in clients:
            await client.aclose()


async def counted(base: str, tracks: list[str]) -> int:
    """The catalog's counted plays of `tracks`, once it has folded the whole log."""
    total = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for track in tracks:
            total += int((await http.get(f"/api/tracks/{track}")).json()["plays"])
    return total


async def bench(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    async with servers(args, folder) as (nodes, projector):
        bases = [n.url for n in nodes]
        cpu = CpuWindow(nodes[0].database_url, nodes, projector)
        tracks = await publish_tracks(bases[0], args.tracks)
        _say(f"{len(nodes)} node(s), {len(tracks)} tracks; posting plays for {args.seconds} s")
        load = _load(args, bases, tracks)
        clients = asyncio.create_task(run_clients(load, args.client_processes))
        sampled: list[float | None] = []
        await asyncio.sleep(max(0.0, load.start_at - time.time()))
        await cpu.start()
        await sample_lag(bases, load.start_at + args.seconds, sampled)
        lag = [x for x in sampled if x is not None]
        finished = await clients
        await cpu.stop()
        last_play = time.perf_counter()
        async with httpx.AsyncClient(base_url=bases[0], timeout=10) as http:

            async def at_head() -> bool:
                return await catalog_lag(http) == 0

            await wait_until(at_head, "the catalog is at the log's head", DRAIN_TIMEOUT)
        drained = time.perf_counter() - last_play
        latencies = [x for r in finished for x in r["latencies"]]
        errors: dict[str, int] = {}
        for r in finished:
            for kind, n in r["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        accepted, seconds = rate(finished)
        expected = sum(r["pairs"] for r in finished)
        found = await counted(bases[0], tracks)
    plain = None if args.no_baseline else await baseline(args, folder, tracks)
    return {
        "database": "sqlite" if args.sqlite else "postgres",
        "nodes": len(nodes),
        "projections": args.projections,
        "client_processes": args.client_processes,
        "connections_per_process": args.connections,
        "tracks": len(tracks),
        "plays_per_request": args.batch or 1,
        "plays": accepted,
        "seconds": round(seconds, 3),
        "plays_per_second": round(accepted / seconds, 1) if seconds else 0.0,
        "plain_plays_per_second": plain,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 2) if latencies else None,
            "p99": round(percentile(latencies, 99) * 1000, 2) if latencies else None,
        },
        "errors": errors,
        "lag_seconds": {
            "p50": percentile(lag, 50) if lag else None,
            "p99": percentile(lag, 99) if lag else None,
            "max": max(lag, default=None),
            "samples": len(lag),
            "unanswered": len(sampled) - len(lag),
        },
        "drain_seconds": round(drained, 3),
        "cpu_ms_per_1000_plays": {
            "server": round(cpu.server * 1e6 / accepted, 1) if accepted else None,
            "database": round(cpu.database * 1e6 / accepted, 1) if accepted else None,
            "projection_process": (
                round(cpu.projector * 1e6 / accepted, 1) if accepted and projector else None
            ),
        },
        "counted": {"expected": expected, "found": found, "right": expected == found},
    }


def report(figures: dict[str, Any]) -> str:
    rate, lag, right = figures["plays_per_second"], figures["lag_seconds"], figures["counted"]
    rate_ok = "met" if rate >= TARGET_PLAYS_PER_SECOND else "not met"
    lag_ok = (
        "met"
        if lag["p99"] is not None and lag["p99"] <= TARGET_LAG_P99 and not lag["unanswered"]
        else "not met"
    )
    return "\n".join(
        [
            f"play ingestion ({figures['database']}, {figures['nodes']} node(s),"
            f" projections {figures['projections']},"
            f" {figures['plays_per_request']} play(s) per request):"
            f" {rate:,.0f} plays/s (target {TARGET_PLAYS_PER_SECOND:,}: {rate_ok}),"
            f" p50 {figures['latency_ms']['p50']} ms, p99 {figures['latency_ms']['p99']} ms,"
            f" errors {figures['errors'] or 'none'}",
            f"baseline, the plain Starlette server (load/plain_server.py) with the same clients:"
            f" {figures['plain_plays_per_second']} plays/s",
            f"catalog lag: p50 {lag['p50']} s, p99 {lag['p99']} s, max {lag['max']} s"
            f" (target p99 <= {TARGET_LAG_P99} s: {lag_ok}); /metrics unanswered within"
            f" {SAMPLE_TIMEOUT:g} s: {lag['unanswered']} of {lag['samples'] + lag['unanswered']}"
            f" samples; at the head"
            f" {figures['drain_seconds']} s after the last play",
            f"counted plays: {right['found']} of {right['expected']} distinct (track, device)"
            f" pairs: {'right' if right['right'] else 'WRONG'}",
            f"CPU per 1,000 plays: server {figures['cpu_ms_per_1000_plays']['server']} ms,"
            f" database {figures['cpu_ms_per_1000_plays']['database']} ms"
            + (
                f" (the projection process's share of the server's:"
                f" {figures['cpu_ms_per_1000_plays']['projection_process']} ms)"
                if figures["projections"] == "process"
                else ""
            ),
        ]
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load.bench_catalog", description=__doc__)
    parser.add_argument("--sqlite", action="store_true", help="the embedded database (one node)")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="Postgres server to make a database on")
    parser.add_argument("--nodes", type=int, default=1, help="jacameno serve processes")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64, help="per client process")
    parser.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument(
        "--batch", type=int, default=0, help="plays per request to POST /api/plays (0: single)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="plays/s in all, paced (0: each connection sends as soon as answered); the"
        " catalog's lag is the issue's at 5,000",
    )
    parser.add_argument("--devices", type=int, default=100_000, help="per client process")
    parser.add_argument(
        "--projections",
        choices=("inline", "process"),
        default="inline",
        help="where the read models fold: in the servers, or (Postgres) in a `jacameno"
        " projections run` of its own beside standby servers, whose CPU counts as theirs",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="with --projections process: the Redis of the servers and the projection process",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the plain server's run with the clients"
    )
    parser.add_argument(
        "--fold", action="store_true", help="the catalog fold alone (load/catalog_fold.py)"
    )
    parser.add_argument("--plays", type=int, default=100_000, help="with --fold")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.sqlite and args.projections == "process":
        raise SystemExit("--projections process needs Postgres (a projection process does)")
    if args.fold:
        kind = "sqlite" if args.sqlite else "postgres"
        rate = asyncio.run(
            catalog_fold.fold_rate(kind, args.dsn, args.tracks, args.plays, args.devices)
        )
        print(
            f"catalog fold ({kind}): {rate['plays_per_second']:,.0f} plays/s in batches of"
            f" {rate['batch']} ({rate['plays']:,} plays of {rate['tracks']} tracks;"
            f" {rate['counted']:,} counted)"
        )
        if args.json is not None:
            args.json.write_text(json.dumps(rate, indent=2) + "\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="jacameno-bench-catalog-") as folder:
        figures = asyncio.run(bench(args, Path(folder)))
    print(report(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["counted"]["right"] else 1


if __name__ == "__main__":
    sys.exit(main())
