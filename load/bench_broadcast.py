"""Broadcast modes benchmark: `python -m load.bench_broadcast`.

Runs load.bench_collab's shape (default 50 clients / 10 rooms / 5 edits/s) against our server in
both broadcast modes (`JACAMENO_COLLAB_BROADCAST=after-commit|on-receipt`), on Postgres and on
SQLite, interleaved in one session (round 1: every mode on every database, then round 2, ...),
so that a disk whose commit tail moves from minute to minute weighs on every variant alike.
Beside each run, a durable-commit probe of the same disk: single-row commits at the rate the
clients edit (Postgres: a connection of its own; SQLite: a file beside the log), its
p50/p99/p99.9 printed beside the server's fan-out and durable-ack latencies.

Printed per run: fan-out p50/p95/p99/max, durable-ack p50/p99, the probe's p50/p99/p99.9, the
harness's event-loop lag p99, and server CPU per 1,000 deliveries with the database's counted in
(every Postgres backend of the run, sampled while it lives). `--js` runs JavaScript yjs clients
(load/js/clients.mjs, one Node process) instead of the Python ones, for every server alike. Each
round also runs the same clients against the y-websocket@2.1.0 reference server
(load.reference_server: in memory, no authentication), and the summary sets our figures against the
issue's targets: on-receipt fan-out p99 at most 1.5 times the reference's, durable-ack p99 within 2
ms of the disk's commit p99, after-commit adding at most 1 ms to the disk's commit at p50 and p99.
Each round also times `--joiners` (50) clients opening a project nobody has open at the same
moment, on each database and on the reference server (time to synced p50/p95; target: ours at most
1.2 times the reference's at p50), then the same clients opening the same projects again (as
after a restart: "joining again"), with the server's CPU per join (its process's, leaves included;
Postgres's own not), and on the floor of our stack: a bare y-websocket server on the same uvicorn
protocols with nothing of JACAMENO's (load.python_stack), which tells the stack's share of a join
from ours (the joiners are JavaScript yjs clients with `--js`, fresh ones per burst in one Node
process); and each of our runs reads the server's event-loop lag from its
`/metrics` (`jacameno_event_loop_lag_seconds`, to its buckets' resolution), and the durable
acknowledgement as the server times it, from the frame's arrival to the acknowledgement handed to
the socket (`jacameno_collab_ack_seconds`), beside its appends to the log
(`jacameno_collab_append_seconds`): what the server adds, without the clients' own sending and
receiving; and on SQLite, how many of its reads it made on the event loop and how many overran
the loop's budget (`jacameno_sqlite_reads_total`). `--projections
inline process` also runs every Postgres mode with the read models folded in a process of their
own (`jacameno projections run` beside a server with `JACAMENO_PROJECTIONS=standby`; both on
Redis, `--redis`; `inline-redis` folds inline with Redis on, the same bus cost): the rows' `proj`
column tells them apart, and that process's CPU is counted in the server's cpu/1k (SQLite runs
always fold inline). What it does not measure yet
(docs/benchmarks.md, "Broadcast modes"): the Hocuspocus reference server."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import uvloop

from harness.accounts import User
from harness.server import ServerProcess
from load import bench_collab as bench
from load import collab_server as srv
from load.broadcast_probes import (
    SQLITE_READ_OUTCOMES,
    Join,
    MetricsWatch,
    joiners_ours,
    joiners_python_stack,
    joiners_reference,
    joining,
)
from load.reference_server import reference_server
from load.report import write_json
from load.stats import percentile

MODES = ("after-commit", "on-receipt")
BACKENDS = ("postgres", "sqlite")
# The server's own histograms (jacameno.collab.timings) the runs report, by their key in a row.
SERVER_TIMED = (
    ("jacameno_collab_ack_seconds", "ack"),
    ("jacameno_collab_append_seconds", "append"),
)
# Where the read models are folded: on the server's event loop, or in `jacameno projections
# run` beside a standby server (Postgres only).
PROJECTIONS = ("inline", "inline-redis", "process")
REFERENCE = "y-websocket"  # the mode column of the reference server's runs
PYTHON_STACK = "python-stack"  # the joins' floor: load.python_stack
MEMORY = "memory"
VARIABLE = "JACAMENO_COLLAB_BROADCAST"


@contextlib.contextmanager
def broadcast_mode(mode: str) -> Iterator[None]:
    """The server subprocess inherits this environment (harness.server.ServerProcess)."""
    before = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = mode
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = before


async def run_reference(plan: bench.Plan) -> dict[str, Any]:
    """The same clients and edits against the reference server: one room per path, tokens
    ignored, nothing logged."""
    shape = plan.shape
    members = [
        [c % plan.users for c in range(r, shape.clients, shape.rooms)] for r in range(shape.rooms)
    ]
    accounts = [User(f"user-{u}", f"user-{u}@bench", "unused") for u in range(plan.users)]
    projects = [f"bench-room-{r}" for r in range(shape.rooms)]
    async with reference_server() as server:
        # _drive needs only the server's pid and ws_url of a ServerProcess.
        result = await bench._drive(
            plan,
            cast(ServerProcess, server),
            srv.Database("", srv.NO_DATABASE, ""),
            accounts,
            projects,
            members,
        )
    result.pop("_contents")
    result["log"] = None
    return result


def row(
    mode: str, backend: str, result: dict[str, Any], projections: str = "inline"
) -> dict[str, Any]:
    """The figures of one run that the comparison prints (`projections`: where the server's
    read models were folded; "-" for the reference server)."""
    fanout, ack, probe = result["fanout"], result["ack"], result["database_probe"]
    return {
        "mode": mode,
        "backend": backend,
        "projections": projections,
        "fanout_p50_ms": fanout.get("p50_ms"),
        "fanout_p95_ms": fanout.get("p95_ms"),
        "fanout_p99_ms": fanout.get("p99_ms"),
        "fanout_max_ms": fanout.get("max_ms"),
        "ack_p50_ms": ack.get("p50_ms"),
        "ack_p99_ms": ack.get("p99_ms"),
        "probe_p50_ms": probe.get("p50_ms"),
        "probe_p99_ms": probe.get("p99_ms"),
        "probe_p999_ms": probe.get("p999_ms"),
        "harness_loop_lag_p99_ms": result["harness"]["loop_lag_p99_ms"],
        "server_loop_lag_p99_ms": result.get("server_loop_lag_p99_ms"),
        **{
            f"server_{key}_p{q}_ms": result.get(f"server_{key}_p{q}_ms")
            for _, key in SERVER_TIMED
            for q in (50, 99)
        },
        **{key: result.get(key) for key in SQLITE_READ_KEYS},
        **outcome(result),
    }


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    """What every comparison prints of a run of load.bench_collab: the server's CPU with the
    database's per 1,000 deliveries, what went missing, the rooms that converged with the log."""
    deliveries = result["fanout"].get("count") or 0
    cpu = (result["server"]["cpu_cores"] + result["database_cpu_cores"]) * result["window_seconds"]
    return {
        "cpu_ms_per_1000_with_database": (round(cpu * 1e6 / deliveries, 2) if deliveries else None),
        "missing": result["missing"]["deliveries"] + result["missing"]["echoes"],
        "rooms_converged": f"{result['rooms_converged']}/{result['rooms']}",
    }


COLUMNS = [
    ("mode", "mode", 13),
    ("backend", "db", 8),
    ("projections", "proj", 12),
    ("fanout_p50_ms", "fo p50", 8),
    ("fanout_p95_ms", "fo p95", 8),
    ("fanout_p99_ms", "fo p99", 8),
    ("fanout_max_ms", "fo max", 8),
    ("ack_p50_ms", "ack p50", 8),
    ("ack_p99_ms", "ack p99", 8),
    ("probe_p50_ms", "disk p50", 9),
    ("probe_p99_ms", "disk p99", 9),
    ("probe_p999_ms", "disk p999", 10),
    ("harness_loop_lag_p99_ms", "lag p99", 8),
    ("server_loop_lag_p99_ms", "srv lag", 8),
    ("server_ack_p50_ms", "sack p50", 9),
    ("server_ack_p99_ms", "sack p99", 9),
    ("server_append_p50_ms", "app p50", 8),
    ("server_append_p99_ms", "app p99", 8),
    ("cpu_ms_per_1000_with_database", "cpu/1k", 8),
    ("missing", "missing", 8),
    ("rooms_converged", "rooms", 6),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, int]] = COLUMNS) -> str:
    """The runs as a fixed-width table of `columns` (key, title, width) (milliseconds; cpu/1k:
    server + database CPU ms per 1,000 deliveries)."""
    lines = ["".join(f"{title:>{width}}" for _, title, width in columns)]
    for r in rows:
        cells = []
        for key, _, width in columns:
            value = r[key]
            text = "-" if value is None else f"{value:g}" if isinstance(value, float) else value
            cells.append(f"{text!s:>{width}}")
        lines.append("".join(cells))
    return "\n".join(lines)


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return percentile(values, 50) if values else None


SQLITE_READ_KEYS = tuple(f"sqlite_reads_{outcome}" for outcome in SQLITE_READ_OUTCOMES)


def _reads_line(runs: list[dict[str, Any]]) -> str:
    """How many SQLite reads the runs made on the event loop, of all (dbdrivers.sqlite's
    LoopFirstReader, from the server's /metrics), and how many overran their budget; empty
    where none were made."""
    totals = {key: sum(r.get(key) or 0.0 for r in runs) for key in SQLITE_READ_KEYS}
    made = sum(totals.values())
    if not made:
        return ""
    return (
        f"SQLite reads on the loop {totals['sqlite_reads_loop']:.0f} of {made:.0f}"
        f" ({totals['sqlite_reads_overran']:.0f} overran its budget)"
    )


def summary(rows: list[dict[str, Any]]) -> str:
    """Per mode and database, the median over rounds of each run's figures, and the issue's
    targets: the comparison the default is chosen from."""
    lines = []
    reference = [r for r in rows if r["mode"] == REFERENCE]
    ref_p99 = _median(reference, "fanout_p99_ms")
    if ref_p99 is not None:
        lines.append(f"  y-websocket@2.1.0: median fan-out p99 {ref_p99:.2f} ms")
    for backend, projections, mode in itertools.product(BACKENDS, PROJECTIONS, MODES):
        runs = [
            r
            for r in rows
            if (r["mode"], r["backend"], r["projections"]) == (mode, backend, projections)
        ]
        if runs:
            m = {
                key: _median(runs, key) or 0.0
                for key in (
                    "fanout_p99_ms",
                    "ack_p50_ms",
                    "ack_p99_ms",
                    "probe_p50_ms",
                    "probe_p99_ms",
                    "server_ack_p50_ms",
                    "server_ack_p99_ms",
                    "server_append_p50_ms",
                    "server_append_p99_ms",
                )
            }
            label = f"{backend:>8} {projections:>12} {mode:>13}:"
            pad = " " * (len(label) + 1)
            lines.append(
                f"{label} median over {len(runs)} runs: fan-out p99"
                f" {m['fanout_p99_ms']:.2f} ms, ack p50/p99 {m['ack_p50_ms']:.2f}/"
                f"{m['ack_p99_ms']:.2f} ms, disk commit p50/p99 {m['probe_p50_ms']:.2f}/"
                f"{m['probe_p99_ms']:.2f} ms"
            )
            lines.append(
                f"{pad}timed by the server: ack p50/p99 {m['server_ack_p50_ms']:.2f}/"
                f"{m['server_ack_p99_ms']:.2f} ms over its appends' p50/p99"
                f" {m['server_append_p50_ms']:.2f}/{m['server_append_p99_ms']:.2f} ms; over the"
                f" disk's commit p50 {m['server_ack_p50_ms'] - m['probe_p50_ms']:+.2f} ms, p99"
                f" {m['server_ack_p99_ms'] - m['probe_p99_ms']:+.2f} ms"
            )
            reads = _reads_line(runs)
            if reads:
                lines.append(f"{pad}{reads}")
            if mode == "on-receipt":
                if ref_p99:
                    ratio = m["fanout_p99_ms"] / ref_p99
                    lines.append(
                        f"{pad}fan-out p99 / reference {ratio:.2f} (target <= 1.5):"
                        f" {'met' if ratio <= 1.5 else 'NOT met'}"
                    )
                over = m["ack_p99_ms"] - m["probe_p99_ms"]
                lines.append(
                    f"{pad}ack p99 - disk p99 {over:+.2f} ms (target <= 2):"
                    f" {'met' if over <= 2 else 'NOT met'}"
                )
            else:
                p50 = m["ack_p50_ms"] - m["probe_p50_ms"]
                p99 = m["ack_p99_ms"] - m["probe_p99_ms"]
                met = p50 <= 1 and p99 <= 1
                lines.append(
                    f"{pad}ack - disk: p50 {p50:+.2f} ms, p99 {p99:+.2f} ms (target <= 1):"
                    f" {'met' if met else 'NOT met'}"
                )
    return "\n".join(lines)


def joins_summary(joins: list[dict[str, Any]]) -> str:
    """Time to synced per server (medians over rounds), against 1.2 times the reference's."""
    lines = []
    medians: dict[str, tuple[float, float]] = {}
    for server in (REFERENCE, PYTHON_STACK, *BACKENDS):
        mine = [j for j in joins if j["server"] == server and j["p50_ms"] is not None]
        if mine:
            medians[server] = (_median(mine, "p50_ms") or 0.0, _median(mine, "p95_ms") or 0.0)
    reference = medians.get(REFERENCE)
    for server, (p50, p95) in medians.items():
        line = f"{server:>12}: time to synced p50 {p50:.1f} ms, p95 {p95:.1f} ms"
        costed = [j for j in joins if j["server"] == server and j.get("cpu_ms_per_join")]
        if costed:
            line += f", server CPU {_median(costed, 'cpu_ms_per_join') or 0.0:.2f} ms per join"
        again = [j for j in joins if j["server"] == server and j.get("rejoin_p50_ms") is not None]
        if again:
            line += f"; joining again p50 {_median(again, 'rejoin_p50_ms') or 0.0:.1f} ms"
        timed = [j for j in joins if j["server"] == server and j.get("server_p50_ms") is not None]
        if timed:
            timed_p50 = _median(timed, "server_p50_ms") or 0.0
            line += f" (timed by the server: p50 {timed_p50:.1f} ms)"
        collected = [j for j in joins if j["server"] == server and j.get("gc_full_ms") is not None]
        if collected:
            count = sum(j["gc_full_collections"] for j in collected)
            held = sum(j["gc_full_ms"] for j in collected)
            line += f"; full GCs {count:.0f}, {held:.0f} ms in all"
        reads = _reads_line([j for j in joins if j["server"] == server])
        if reads:
            line += f"; {reads}"
        if reference is not None and server in BACKENDS and reference[0] > 0:
            ratio = p50 / reference[0]
            line += f"; p50 / reference {ratio:.2f} (target <= 1.2):"
            line += " met" if ratio <= 1.2 else " NOT met"
        elif reference is not None and server == PYTHON_STACK and reference[0] > 0:
            line += f"; p50 / reference {p50 / reference[0]:.2f} (the floor of this stack)"
        lines.append(line)
    return "\n".join(lines)


async def _join_round(
    args: argparse.Namespace, round_number: int, latency: float, join: Join
) -> list[dict[str, Any]]:
    """One round's joiners on each server: the reference, the floor of our stack, ours."""
    joins: list[dict[str, Any]] = []
    repeats = args.join_repeats
    if args.reference:
        figures = await joiners_reference(args.joiners, repeats, latency, join)
        joins.append({"server": REFERENCE, "round": round_number} | figures)
    figures = await joiners_python_stack(args.joiners, repeats, latency, join)
    joins.append({"server": PYTHON_STACK, "round": round_number} | figures)
    for backend in args.backends:
        figures = await joiners_ours(backend, args.postgres, args.joiners, repeats, latency, join)
        joins.append({"server": backend, "round": round_number} | figures)
    return joins


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shape = bench.Shape(args.clients, args.rooms, args.rate)
    started = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    joins: list[dict[str, Any]] = []
    latency = args.join_latency_ms / 1000
    for round_number in range(1, args.rounds + 1):
        if args.joiners:
            print(f"round {round_number}: {args.joiners} joiners", file=sys.stderr, flush=True)
            async with joining(args.js) as join:
                joins += await _join_round(args, round_number, latency, join)
        if args.only == "join":
            continue
        if args.reference:
            plan = _plan(args, shape, MEMORY)
            print(f"round {round_number}: y-websocket reference", file=sys.stderr, flush=True)
            result = await run_reference(plan)
            result.pop("timeline", None)
            rows.append(row(REFERENCE, MEMORY, result, "-") | {"round": round_number})
            runs.append({"mode": REFERENCE, "backend": MEMORY, "round": round_number} | result)
        for backend, projections, mode in itertools.product(args.backends, args.projections, MODES):
            if backend == "sqlite" and projections != "inline":
                continue  # a projection process needs Postgres (jacameno.bootstrap.projecting)
            plan = _plan(
                args,
                shape,
                backend,
                probe_interval=1 / shape.edits_per_second,
                projections=projections,
                redis_url=args.redis,
            )
            print(
                f"round {round_number}: {backend}, {mode}, projections {projections}",
                file=sys.stderr,
                flush=True,
            )
            watch = MetricsWatch()
            with broadcast_mode(mode):
                result = await bench.run_shape(plan, keep_database=False, watch=watch)
            result["server_loop_lag_p99_ms"] = watch.loop_lag_p99_ms
            result |= watch.sqlite_reads()
            for name, key in SERVER_TIMED:
                for q in (50, 99):
                    result[f"server_{key}_p{q}_ms"] = watch.server_ms(name, q)
            result.pop("timeline", None)
            rows.append(row(mode, backend, result, projections) | {"round": round_number})
            runs.append(
                {"mode": mode, "backend": backend, "projections": projections}
                | {"round": round_number}
                | result
            )
    return {
        "benchmark": "broadcast",
        "started_at": started.isoformat(),
        "command": " ".join(["python -m load.bench_broadcast", *sys.argv[1:]]),
        "shape": str(shape),
        "clients": "javascript (yjs)" if args.js else "python (pycrdt)",
        "host": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "rows": rows,
        "join_latency_ms": args.join_latency_ms,
        "joins": joins,
        "runs": runs,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_broadcast", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0, help="edits per second per client")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--joiners", type=int, default=50, help="simultaneous joiners timed (0: none)"
    )
    parser.add_argument(
        "--join-repeats", type=int, default=3, help="projects opened by the joiners per round"
    )
    parser.add_argument(
        "--join-latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="the joiners reach every server through a proxy adding this round trip"
        " (harness/latency_proxy.py; the edit load does not)",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), metavar="DB"
    )
    parser.add_argument("--postgres", default=bench.DEFAULT_DSN, metavar="ADMIN_DSN")
    parser.add_argument(
        "--projections",
        nargs="+",
        choices=PROJECTIONS,
        default=["inline"],
        metavar="WHERE",
        help="where the Postgres server's read models are folded: inline (its event loop),"
        " inline-redis (the same, with Redis on as a process run has it), process (`jacameno"
        " projections run` beside a standby server); several: each run once per layout",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        metavar="URL",
        help="Redis of the process runs (the standby server and the projection process)",
    )
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the y-websocket reference server (make load/reference/node_modules/.installed)",
    )
    parser.add_argument(
        "--only",
        choices=("join",),
        help="run only this measurement (join: the joiners, no edit load)",
    )
    parser.add_argument(
        "--js",
        action="store_true",
        help="JavaScript yjs clients (load/js, make load/js/node_modules/.installed) instead of"
        " the Python ones, for every server",
    )
    parser.add_argument("--results", type=Path, default=bench.RESULTS)
    args = parser.parse_args(argv)
    for name in ("clients", "rooms", "rate", "seconds", "rounds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0")
    if args.rooms > args.clients:
        parser.error("--rooms must not exceed --clients")
    if args.only == "join" and not args.joiners:
        parser.error("--only join needs --joiners > 0")
    return args


def _plan(args: argparse.Namespace, shape: bench.Shape, backend: str, **more: Any) -> bench.Plan:
    """One run's plan: the command line's shape, window and clients, on `backend`."""
    return bench.Plan(
        shape=shape,
        seconds=args.seconds,
        warmup=args.warmup,
        users=shape.clients,
        backend=backend,
        dsn=args.postgres,
        js=args.js,
        **more,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    document = uvloop.run(run(args))
    print(table(document["rows"]))
    print(summary(document["rows"]))
    print(joins_summary(document["joins"]))
    stamp = datetime.fromisoformat(document["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    for path in write_json(args.results, stamp, document, name="broadcast"):
        print(f"wrote {path}")
    failed = [r for r in document["rows"] if r["missing"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
