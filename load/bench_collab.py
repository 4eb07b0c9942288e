"""Collaboration benchmark: `python -m load.bench_collab`.

Starts `jacameno serve` as a subprocess on a fresh database (Postgres by default, or SQLite),
makes users, projects and memberships over the REST API, then drives N y-websocket clients over
M rooms at R edits per second each, from this one asyncio process (websockets + pycrdt; see
load/collab_client.py). Every edit is a sync update; the server logs it durably (group commit)
and only then broadcasts it, the sender's echo being its durable acknowledgement.

Reported, each beside its target: fan-out latency (send -> every other client of the room),
durable-ack latency (send -> own echo), deliveries/s, missing deliveries and echoes, convergence
of every room (all clients' documents equal, and equal to the document rebuilt from the log with
the event store's read_stream), the server's CPU per 1,000 deliveries and its RSS per room and
per connection, and the harness's own CPU (it shares the machine's cores with the server and
the database: a saturated harness is said so)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from pycrdt import Doc

from domain import events
from harness.accounts import User
from harness.server import ServerProcess
from load import collab_server as srv
from load.collab_client import Client, Ledger, content
from load.js_clients import Fleet, JsFleet, PythonFleet
from load.report import write_json
from load.stats import Measurement, percentile

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"
WATCH_GRACE = 1.0  # seconds a watch may take to finish once every edit was delivered
SATURATED = 0.9  # harness CPU (cores) from which its own queueing shows in the latencies


@dataclass(frozen=True, slots=True)
class Shape:
    clients: int
    rooms: int
    rate: float  # edits per second per client

    def __str__(self) -> str:
        return f"{self.clients} clients / {self.rooms} rooms / {self.rate:g} edits/s"

    @property
    def room_sizes(self) -> list[int]:
        return [len(range(r, self.clients, self.rooms)) for r in range(self.rooms)]

    @property
    def edits_per_second(self) -> float:
        return self.clients * self.rate

    @property
    def deliveries_per_second(self) -> float:
        """Offered fan-out: every edit to every other client of its room."""
        return sum(n * (n - 1) * self.rate for n in self.room_sizes)


@dataclass(frozen=True, slots=True)
class Targets:
    """What a shape must achieve. Nothing missing and every room converged is asked of every
    run; latency and CPU targets belong to the reference shapes."""

    fanout_p99_ms: float | None = None
    cpu_ms_per_1000: float | None = None


REFERENCE: dict[Shape, Targets] = {
    Shape(50, 10, 5): Targets(fanout_p99_ms=5),
    Shape(200, 20, 10): Targets(fanout_p99_ms=100, cpu_ms_per_1000=25),
}
QUICK = Shape(10, 2, 5)


@dataclass(frozen=True, slots=True)
class Plan:
    shape: Shape
    seconds: float
    warmup: float
    users: int
    backend: str  # "postgres" or "sqlite"
    dsn: str
    drain_seconds: float = 15.0
    idle_seconds: float = 2.0
    apply_live: bool = False  # clients apply received updates on arrival, not after the window
    js: bool = False  # JavaScript yjs clients (load/js_clients.py) instead of the Python ones
    py_spy: str | None = None  # py-spy binary: profile the server during the window
    profile_path: str | None = None
    connect_concurrency: int = 16
    probe_interval: float = 0.05  # seconds between the database probe's durable commits
    # "process": the server stands by (JACAMENO_PROJECTIONS=standby, with Redis at `redis_url`)
    # beside `jacameno projections run`, whose CPU counts as the server's (Postgres only);
    # "inline-redis": folded inline, with Redis at `redis_url` as a process run has it.
    projections: str = "inline"
    redis_url: str | None = None


@dataclass(slots=True)
class Sample:
    """CPU counters at one moment."""

    at: float  # perf_counter
    server: float
    database: dict[int, float]
    harness: float
    machine_busy: float
    machine_stolen: float
    machine_total: float
    counters: dict[str, int]
    companions: float = 0.0  # of `server`: the companions' share

    @classmethod
    async def take(
        cls, server_pid: int, database: srv.Database, companions: Sequence[int] = ()
    ) -> Sample:
        """The counters now; the server's CPU includes its `companions` (a projection
        process)."""
        pids = await database.backend_pids()
        counters = await database.counters()
        busy, stolen, total = srv.machine_cpu()
        beside = srv.pids_cpu(list(companions))
        return cls(
            time.perf_counter(),
            srv.cpu_seconds(server_pid) + beside,
            {pid: srv.pids_cpu([pid]) for pid in pids},
            time.process_time(),
            busy,
            stolen,
            total,
            counters,
            beside,
        )


@dataclass(slots=True)
class Window:
    """The measured window's CPU figures (seconds of CPU over seconds of wall clock)."""

    seconds: float
    server_cpu: float
    database_cpu: float
    harness_cpu: float
    machine_busy: float
    machine_stolen: float
    machine_cores: float
    counters: dict[str, int]  # database counters: increase over the window
    companions_cpu: float = 0.0  # of server_cpu: a projection process's

    @classmethod
    def between(cls, start: Sample, end: Sample) -> Window:
        database = sum(end.database[p] - start.database.get(p, 0.0) for p in end.database)
        return cls(
            end.at - start.at,
            end.server - start.server,
            database,
            end.harness - start.harness,
            end.machine_busy - start.machine_busy,
            end.machine_stolen - start.machine_stolen,
            (end.machine_total - start.machine_total) / max(end.at - start.at, 1e-9),
            {k: v - start.counters.get(k, 0) for k, v in end.counters.items()},
            end.companions - start.companions,
        )

    def cores(self, cpu: float) -> float:
        return cpu / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class LoopLag:
    """How late the harness's event loop wakes up a 5 ms ticker: its own queueing delay."""

    interval: float = 0.005
    lags: list[float] = field(default_factory=list)
    recording: bool = False

    async def run(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            if self.recording:
                self.lags.append(max(0.0, time.perf_counter() - due))


def _ms(seconds: list[float], q: float) -> float | None:
    return round(percentile(seconds, q) * 1000, 3) if seconds else None


def timeline(
    ledger: Ledger, window_start: float, probes: list[tuple[float, float]]
) -> list[dict[str, Any]]:
    """Fan-out latency by the second of the window in which the edits were sent, beside the
    slowest database probe commit started in that second."""
    seconds: dict[int, list[float]] = {}
    origin = window_start * 1e9
    for sent, latency in zip(ledger.fanout_sent, ledger.fanout, strict=True):
        seconds.setdefault(int((sent - origin) // 1e9), []).append(latency)
    probe: dict[int, float] = {}
    for at, latency in probes:
        second = int(at - window_start) if at >= window_start else -1
        probe[second] = max(probe.get(second, 0.0), latency)
    return [
        {
            "second": s,
            "deliveries": len(v),
            "p50_ms": _ms(v, 50),
            "p99_ms": _ms(v, 99),
            "max_ms": round(max(v) * 1000, 3),
            "probe_commit_max_ms": round(probe[s] * 1000, 3) if s in probe else None,
        }
        for s, v in sorted(seconds.items())
    ]


def probe_json(
    probes: list[tuple[float, float]], start: float, end: float, interval: float = 0.05
) -> dict[str, Any]:
    inside = [latency for at, latency in probes if start <= at < end]
    return {
        "interval_ms": round(interval * 1000, 3),
        "commits": len(inside),
        "p50_ms": _ms(inside, 50),
        "p99_ms": _ms(inside, 99),
        "p999_ms": _ms(inside, 99.9),
        "max_ms": round(max(inside) * 1000, 3) if inside else None,
    }


def latency_json(m: Measurement) -> dict[str, Any]:
    return m.to_json() | {"p95_ms": _ms(m.latencies, 95)}


async def _wait_drained(ledger: Ledger, sizes: list[int], seconds: float) -> float:
    """Wait until every edit reached every client of its room (or `seconds`); how long it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if ledger.missing(sizes, measured_only=False) == (0, 0):
            break
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def _database(plan: Plan, folder: str, keep: bool) -> AsyncIterator[srv.Database]:
    if plan.backend == "sqlite":
        with srv.sqlite_database(folder) as db:
            yield db
    else:
        async with srv.postgres_database(plan.dsn, keep) as db:
            yield db


_T0 = time.perf_counter()


async def _start_profiler(plan: Plan, pid: int) -> asyncio.subprocess.Process | None:
    """py-spy on the server for the measured window (non-blocking sampling, collapsed stacks)."""
    if plan.py_spy is None or plan.profile_path is None:
        return None
    return await asyncio.create_subprocess_exec(
        plan.py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(plan.seconds))),
        "--rate",
        "250",
        "--nonblocking",
        "--threads",
        "--format",
        "raw",
        "--output",
        plan.profile_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _say(text: str) -> None:
    print(f"[collab {time.perf_counter() - _T0:6.1f} s] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Opened:
    """One room of a run: its project and the user who owns it."""

    project_id: str
    owner: User


Watch = Callable[[ServerProcess, Ledger, list[Opened]], Coroutine[Any, Any, None]]
"""Something that watches the server while the clients edit (from the first edit until every
edit was delivered; cancelled then), such as load.bench_projections sampling the projections'
lag or load.bench_flood timing project commands; `ledger.measuring` says when the measured
window is open."""


async def run_shape(plan: Plan, keep_database: bool, watch: Watch | None = None) -> dict[str, Any]:
    """One shape on a fresh database and a fresh server."""
    shape = plan.shape
    sizes = shape.room_sizes
    # Client c is in room c % rooms (its index there: c // rooms) and logs in as user c % users.
    members = [
        [c % plan.users for c in range(r, shape.clients, shape.rooms)] for r in range(shape.rooms)
    ]
    with tempfile.TemporaryDirectory(prefix="jacameno-collab-") as folder:
        async with (
            _database(plan, folder, keep_database) as database,
            contextlib.AsyncExitStack() as stack,
        ):
            extra = None
            if plan.projections != "inline":
                if plan.redis_url is None:
                    raise ValueError("a projection process needs Redis (Plan.redis_url)")
                if plan.projections == "process":
                    extra = srv.standby(plan.redis_url)
                else:  # inline-redis: folded inline, with the bus a process run has
                    extra = {"JACAMENO_REDIS_URL": plan.redis_url}
            server = srv.server_process(database, folder, extra)
            _say(f"{plan.backend}: migrate")
            await srv.migrate(server.environment)
            companions: list[int] = []
            if plan.projections == "process":
                companions.append(
                    await stack.enter_async_context(srv.projection_process(server, folder))
                )
                _say(f"projection process pid {companions[0]}")
            async with server:
                _say(f"server pid {server.pid} at {server.url}; {plan.users} users, projects")
                started = time.perf_counter()
                accounts, projects = await srv.setup(server, plan.users, members)
                setup_seconds = time.perf_counter() - started
                result = await _drive(
                    plan, server, database, accounts, projects, members, watch, companions
                )
                result["server"]["projections"] = plan.projections
                result["setup_seconds"] = round(setup_seconds, 2)
                stopping = time.perf_counter()
                status = await server.stop()
                result["server"]["exit_status"] = status
                result["server"]["stop_seconds"] = round(time.perf_counter() - stopping, 2)
                _say(f"server stopped in {result['server']['stop_seconds']} s, status {status}")
                result["server"]["log_tail"] = server.log_tail(20)
            result["database"] = {"kind": database.kind} | await database.settings()
            _say("rebuilding every room from the log")
            result["log"] = await _verify_log(database, projects, result.pop("_contents"), sizes)
    return result


async def _drive(
    plan: Plan,
    server: ServerProcess,
    database: srv.Database,
    accounts: list[User],
    projects: list[str],
    members: list[list[int]],
    watch: Watch | None = None,
    companions: Sequence[int] = (),
) -> dict[str, Any]:
    """Connect the fleet, measure a window of edits, check what arrived; the server's CPU
    counts its `companions` (a projection process's pid) in."""
    shape = plan.shape
    sizes = shape.room_sizes
    pid = server.pid
    await asyncio.sleep(0.5)
    gc.collect()
    rss_baseline = srv.rss_bytes(pid)
    ledger = Ledger()
    started_ns = time.perf_counter_ns()
    # The fleet's clients room after room: (room, index in the room) of each.
    places = [(r, i) for r, users in enumerate(members) for i in range(len(users))]
    urls = [
        f"{server.ws_url}/collab/{projects[r]}?token={accounts[members[r][i]].token}"
        for r, i in places
    ]
    fleet: Fleet
    if plan.js:
        fleet = JsFleet(ledger, [(url, r, i) for url, (r, i) in zip(urls, places, strict=True)])
    else:
        clients = [
            Client(
                ledger,
                url,
                r,
                i,
                seed=r * 100_003 + i,
                started_ns=started_ns,
                apply_live=plan.apply_live,
            )
            for url, (r, i) in zip(urls, places, strict=True)
        ]
        fleet = PythonFleet(clients, plan.connect_concurrency)
    first = [n for n, (_, i) in enumerate(places) if i == 0]
    _say(f"connecting {len(first)} first clients (one per room)")
    await fleet.connect(first)
    await asyncio.sleep(0.5)
    rss_rooms = srv.rss_bytes(pid)
    _say(f"connecting the other {len(places) - len(first)} clients")
    await fleet.connect([n for n, (_, i) in enumerate(places) if i > 0])
    await asyncio.sleep(0.5)
    rss_connected = srv.rss_bytes(pid)
    # What the server and the database spend with every socket open and nobody editing.
    idle_start = await Sample.take(pid, database, companions)
    await asyncio.sleep(plan.idle_seconds)
    idle = Window.between(idle_start, await Sample.take(pid, database, companions))

    start = time.perf_counter() + 0.2
    measure_from = start + plan.warmup
    stop = measure_from + plan.seconds
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    probes: list[tuple[float, float]] = []
    probe_task = asyncio.create_task(database.probe(plan.probe_interval, probes))
    opened = [Opened(p, accounts[members[r][0]]) for r, p in enumerate(projects)]
    watch_task = None if watch is None else asyncio.create_task(watch(server, ledger, opened))
    samples: list[Sample] = []

    async def window() -> None:
        await asyncio.sleep(measure_from - time.perf_counter())
        samples.append(await Sample.take(pid, database, companions))
        ledger.measuring = lag.recording = True
        profiler = await _start_profiler(plan, pid)
        await asyncio.sleep(stop - time.perf_counter())
        ledger.measuring = lag.recording = False
        samples.append(await Sample.take(pid, database, companions))
        if profiler is not None:
            await profiler.wait()

    _say(
        f"{shape}: {plan.warmup:g} s warm-up, {plan.seconds:g} s measured"
        f" ({shape.edits_per_second:,.0f} edits/s, {shape.deliveries_per_second:,.0f} deliveries/s)"
    )
    gc.disable()  # the harness's own pauses would show as server latency
    try:
        await asyncio.gather(window(), fleet.run(shape.rate, start, measure_from, stop))
        drained = await _wait_drained(ledger, sizes, plan.drain_seconds)
    finally:
        gc.enable()
        lag_task.cancel()
        probe_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe_task
        if watch_task is not None:
            # A watch that ends by itself (a last read after the window) gets a moment to.
            await asyncio.wait({watch_task}, timeout=WATCH_GRACE)
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch_task
    rss_end = srv.rss_bytes(pid)
    missing_measured = ledger.missing(sizes, measured_only=True)
    missing_all = ledger.missing(sizes, measured_only=False)
    every = await fleet.contents()
    closed = fleet.closed()
    seqs = fleet.seqs()
    contents: list[dict[str, Any]] = []
    converged: list[bool] = []
    for r in range(len(members)):
        mine = [n for n, (room, _) in enumerate(places) if room == r]
        docs = [every[n] for n in mine]
        contents.append(docs[0])
        expected = {f"{r}.{places[n][1]}:{k}" for n in mine for k in range(1, seqs[n] + 1)}
        converged.append(all(d == docs[0] for d in docs) and set(docs[0]["bench"]) == expected)
    closing = time.perf_counter()
    await fleet.close()
    _say(f"clients closed in {time.perf_counter() - closing:.2f} s")

    w = Window.between(samples[0], samples[1])
    fanout = Measurement(ledger.window_deliveries, w.seconds, ledger.fanout)
    acks = Measurement(ledger.window_echoes, w.seconds, ledger.acks)
    per_1000 = (
        w.server_cpu * 1000 / (ledger.window_deliveries / 1000)
        if ledger.window_deliveries
        else None
    )
    per_room = (rss_rooms - rss_baseline) / shape.rooms
    others = shape.clients - shape.rooms
    per_connection = (rss_connected - rss_rooms) / others if others else None
    return {
        "_contents": contents,
        "window_seconds": round(w.seconds, 3),
        "edits": {
            "sent": fleet.sent(),
            "sent_in_window": ledger.window_edits,
            "per_second": round(ledger.window_edits / w.seconds, 1),
            "offered_per_second": shape.edits_per_second,
        },
        "fanout": latency_json(fanout) | {"offered_per_second": shape.deliveries_per_second},
        "ack": latency_json(acks),
        "missing": {
            "deliveries_in_window": missing_measured[0],
            "echoes_in_window": missing_measured[1],
            "deliveries": missing_all[0],
            "echoes": missing_all[1],
            "duplicates": ledger.duplicates,
            "unknown_updates": ledger.unknown,
            "permission_denied": ledger.denied,
            "drain_seconds": round(drained, 2),
        },
        "closed_by_server": closed,
        "rooms_converged": sum(converged),
        "rooms": shape.rooms,
        "server": {
            "pid": pid,
            "cpu_seconds": round(w.server_cpu, 3),
            "cpu_cores": round(w.cores(w.server_cpu), 3),
            # the projection process's share of cpu_cores (0 when the server projects inline)
            "projection_process_cpu_cores": round(w.cores(w.companions_cpu), 3),
            "idle_cpu_cores": round(idle.cores(idle.server_cpu), 3),
            "cpu_ms_per_1000_deliveries": None if per_1000 is None else round(per_1000, 2),
            "cpu_ms_per_1000_edits": round(w.server_cpu * 1e6 / max(ledger.window_edits, 1), 2),
            "rss_baseline_bytes": rss_baseline,
            "rss_rooms_bytes": rss_rooms,
            "rss_connected_bytes": rss_connected,
            "rss_end_bytes": rss_end,
            "rss_per_room_bytes": round(per_room),
            "rss_per_connection_bytes": None if per_connection is None else round(per_connection),
        },
        "database_cpu_cores": round(w.cores(w.database_cpu), 3),
        "database_idle_cpu_cores": round(idle.cores(idle.database_cpu), 3),
        "database_per_second": {k: round(w.cores(v), 1) for k, v in w.counters.items()},
        "timeline": timeline(ledger, samples[0].at, probes),
        "database_probe": probe_json(probes, samples[0].at, samples[1].at, plan.probe_interval),
        "harness": {
            "cpu_cores": round(w.cores(w.harness_cpu), 3),
            "saturated": w.cores(w.harness_cpu) >= SATURATED,
            "loop_lag_p50_ms": _ms(lag.lags, 50),
            "loop_lag_p99_ms": _ms(lag.lags, 99),
            "loop_lag_max_ms": round(max(lag.lags) * 1000, 3) if lag.lags else None,
            "send_lateness_p99_ms": _ms(ledger.send_lateness, 99),
            "send_lateness_max_ms": (
                round(max(ledger.send_lateness) * 1000, 3) if ledger.send_lateness else None
            ),
            "rss_bytes": srv.rss_bytes(os.getpid()),
        },
        "machine": {
            "cores": round(w.machine_cores, 2),
            "busy_cores": round(w.cores(w.machine_busy), 3),
            "stolen_cores": round(w.cores(w.machine_stolen), 3),
            "other_processes_cores": round(
                w.cores(w.machine_busy - w.server_cpu - w.database_cpu - w.harness_cpu), 3
            ),
        },
    }


async def _verify_log(
    database: srv.Database, projects: list[str], contents: list[dict[str, Any]], sizes: list[int]
) -> dict[str, Any]:
    """Rebuild each room's document from its stream and compare it with the clients'."""
    store = await database.open_store()
    try:
        equal = 0
        updates = 0
        other = 0
        for project_id, expected in zip(projects, contents, strict=True):
            doc: Doc[Any] = Doc()
            for event in await srv.read_log(store, events.stream_name(project_id)):
                if event.type == events.DOC_UPDATED:
                    doc.apply_update(event.data)
                    updates += 1
                else:
                    other += 1
            equal += content(doc) == expected
    finally:
        await store.close()
    return {"rooms_equal_to_clients": equal, "doc_updates": updates, "other_events": other}


def verdicts(shape: Shape, result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(figure, value, target, met) for every target of the run."""
    missing = result["missing"]
    log = result["log"]
    checks = [
        (
            "missing deliveries / echoes",
            f"{missing['deliveries']} / {missing['echoes']}",
            "0 / 0",
            missing["deliveries"] == 0 and missing["echoes"] == 0,
        ),
        (
            "duplicates / unknown updates",
            f"{missing['duplicates']} / {missing['unknown_updates']}",
            "0 / 0",
            missing["duplicates"] == 0 and missing["unknown_updates"] == 0,
        ),
        (
            "rooms converged (clients / log)",
            f"{result['rooms_converged']} / {log['rooms_equal_to_clients']} of {shape.rooms}",
            f"{shape.rooms} / {shape.rooms}",
            result["rooms_converged"] == log["rooms_equal_to_clients"] == shape.rooms,
        ),
        (
            "updates in the log",
            f"{log['doc_updates']:,}",
            f"= edits sent ({result['edits']['sent']:,})",
            log["doc_updates"] == result["edits"]["sent"],
        ),
    ]
    targets = REFERENCE.get(shape)
    if targets is not None and targets.fanout_p99_ms is not None:
        p99 = result["fanout"].get("p99_ms")
        checks.append(
            (
                "fan-out p99",
                f"{p99} ms",
                f"<= {targets.fanout_p99_ms:g} ms",
                p99 is not None and p99 <= targets.fanout_p99_ms,
            )
        )
    if targets is not None and targets.cpu_ms_per_1000 is not None:
        cpu = result["server"]["cpu_ms_per_1000_deliveries"]
        checks.append(
            (
                "server CPU per 1,000 deliveries",
                f"{cpu} ms",
                f"<= {targets.cpu_ms_per_1000:g} ms",
                cpu is not None and cpu <= targets.cpu_ms_per_1000,
            )
        )
    return checks


def _lat(figures: dict[str, Any]) -> str:
    return " / ".join(
        "-" if figures.get(k) is None else f"{figures[k]:.2f}"
        for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    )


def table(plan: Plan, result: dict[str, Any]) -> str:
    shape = plan.shape
    mib = 1024 * 1024
    server = result["server"]
    harness = result["harness"]
    lines = [
        f"== {shape}, {plan.backend}: {plan.seconds:g} s measured after {plan.warmup:g} s"
        f" warm-up, room sizes {sorted(set(shape.room_sizes))} ==",
        f"{'figure':<40} {'value':<40} {'target':<22} met",
        "-" * 108,
    ]

    def row(name: str, value: str, target: str = "", met: bool | None = None) -> None:
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:<40} {value:<40} {target:<22} {mark}")

    edits = result["edits"]
    row(
        "edits sent in window",
        f"{edits['sent_in_window']:,} ({edits['per_second']:,.0f}/s)",
        f"offered {edits['offered_per_second']:,.0f}/s",
    )
    fan = result["fanout"]
    row(
        "deliveries in window",
        f"{fan['count']:,} ({fan['per_second']:,.0f}/s)",
        f"offered {fan['offered_per_second']:,.0f}/s",
    )
    row("fan-out ms p50 / p95 / p99 / max", _lat(fan))
    row("durable ack ms p50 / p95 / p99 / max", _lat(result["ack"]))
    for name, value, target, met in verdicts(shape, result):
        row(name, value, target, met)
    if shape not in REFERENCE:
        lines.append(f"  (latency and CPU targets are set for {' and '.join(map(str, REFERENCE))})")
    if result["closed_by_server"]:
        row("sockets closed by the server", str(result["closed_by_server"])[:60])
    row(
        "server CPU, cores (when idle)",
        f"{server['cpu_cores']:.2f} ({server['idle_cpu_cores']:.2f});"
        f" {server['cpu_ms_per_1000_edits']:.1f} ms per 1,000 edits",
    )
    row(
        "database backends CPU, cores (when idle)",
        f"{result['database_cpu_cores']:.2f} ({result['database_idle_cpu_cores']:.2f})",
    )
    rates = result["database_per_second"]
    if rates:
        row(
            "db transactions/s (log rows/s; checkpoints/s)",
            f"{rates['transactions']:,.0f} ({rates['events_inserted']:,.0f};"
            f" {rates['checkpoint_updates']:,.0f})",
        )
    row(
        "server RSS: baseline / room / socket",
        f"{server['rss_baseline_bytes'] / mib:.1f} MiB / {server['rss_per_room_bytes'] / 1024:.0f}"
        f" KiB / {(server['rss_per_connection_bytes'] or 0) / 1024:.0f} KiB",
    )
    row("server RSS at the end", f"{server['rss_end_bytes'] / mib:.1f} MiB")
    worst = sorted(result["timeline"], key=lambda t: -t["max_ms"])[:3]
    row(
        "slowest seconds: max ms (db probe max ms)",
        ", ".join(
            f"s{t['second']}: {t['max_ms']:.0f} ({t['probe_commit_max_ms'] or 0:.0f})"
            for t in sorted(worst, key=lambda t: t["second"])
        ),
    )
    probe = result["database_probe"]
    if probe["commits"]:
        row(
            "db probe: 1-row commit p50 / p99 / max ms",
            f"{probe['p50_ms']} / {probe['p99_ms']} / {probe['max_ms']}  (every 50 ms)",
        )
    row(
        "harness CPU (cores)",
        f"{harness['cpu_cores']:.2f}",
        "",
        None,
    )
    row(
        "harness loop lag ms p50 / p99 / max",
        " / ".join(str(harness[f"loop_lag_{q}_ms"]) for q in ("p50", "p99", "max")),
    )
    row(
        "harness send lateness ms p99 / max",
        f"{harness['send_lateness_p99_ms']} / {harness['send_lateness_max_ms']}",
    )
    machine = result["machine"]
    row(
        "machine busy, cores (others; stolen)",
        f"{machine['busy_cores']:.2f} of {machine['cores']:.0f}"
        f" ({machine['other_processes_cores']:.2f}; {machine['stolen_cores']:.2f})",
    )
    if harness["saturated"]:
        lines.append(
            f"  !! the harness used {harness['cpu_cores']:.2f} of a core: it saturated its core, so"
            " the latencies include its own queueing (read the loop lag)"
        )
    return "\n".join(lines)


def shapes(args: argparse.Namespace) -> list[Shape]:
    if args.clients is None and args.rooms is None and args.rate is None:
        return [QUICK] if args.quick else list(REFERENCE)
    base = QUICK if args.quick else next(iter(REFERENCE))
    return [
        Shape(
            args.clients or base.clients,
            args.rooms or base.rooms,
            args.rate or base.rate,
        )
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    document: dict[str, Any] = {
        "benchmark": "collab",
        "started_at": started.isoformat(),
        "command": " ".join(["python -m load.bench_collab", *sys.argv[1:]]),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
        },
        "quick": bool(args.quick),
        "runs": [],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    for shape in shapes(args):
        plan = Plan(
            shape=shape,
            seconds=args.seconds or (3.0 if args.quick else 20.0),
            warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0),
            users=min(args.users or shape.clients, shape.clients),
            backend="sqlite" if args.sqlite else "postgres",
            dsn=args.postgres or DEFAULT_DSN,
            apply_live=args.apply_live,
            py_spy=args.py_spy,
            profile_path=str(
                args.results / f"collab-{started:%Y%m%dT%H%M%SZ}-{shape.clients}c-pyspy.txt"
            ),
        )
        result = await run_shape(plan, args.keep_database)
        _say("done")
        print(table(plan, result), flush=True)
        targets = REFERENCE.get(shape)
        document["runs"].append(
            {
                "shape": asdict(shape),
                "plan": {k: v for k, v in asdict(plan).items() if k not in ("shape", "dsn")},
                "targets": None if targets is None else asdict(targets),
                "verdicts": [
                    {"figure": f, "value": v, "target": t, "met": m}
                    for f, v, t, m in verdicts(shape, result)
                ],
                "loadavg_after": os.getloadavg(),
            }
            | result
        )
    document["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return document


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_collab", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clients", type=int, help="clients (default: the reference shapes)")
    parser.add_argument("--rooms", type=int, help="rooms (projects); client c joins room c %% M")
    parser.add_argument("--rate", type=float, help="edits per second per client")
    parser.add_argument("--seconds", type=float, help="measured window (default 20; quick 3)")
    parser.add_argument("--warmup", type=float, help="edits before the window (default 3; quick 1)")
    parser.add_argument(
        "--users", type=int, help="accounts, shared round-robin by the clients (default: one each)"
    )
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_DSN,
        default=None,
        metavar="ADMIN_DSN",
        help="Postgres (the default): a fresh database on this server, dropped at the end"
        f" (default DSN {DEFAULT_DSN})",
    )
    backend.add_argument("--sqlite", action="store_true", help="SQLite in a temporary folder")
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {QUICK}, 1 s warm-up, 3 s measured"
    )
    parser.add_argument(
        "--apply-live",
        action="store_true",
        help="clients apply each received update on arrival (default: after the window; it"
        " costs the harness a quarter of its CPU)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="BINARY",
        help="profile the server with this py-spy during the window (collapsed stacks in"
        " the results folder); sampling costs the server some CPU",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for JSON results")
    args = parser.parse_args(argv)
    for name in ("clients", "rooms", "rate", "seconds", "users"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be > 0")
    if args.clients is not None and args.rooms is not None and args.rooms > args.clients:
        parser.error("--rooms must not exceed --clients")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    document = uvloop.run(run(args))
    stamp = datetime.fromisoformat(document["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    for path in write_json(args.results, stamp, document, name="collab"):
        print(f"wrote {path}")
    failed = [v for r in document["runs"] for v in r["verdicts"] if not v["met"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
