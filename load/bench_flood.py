"""Both broadcast modes near a node's capacity: `python -m load.bench_flood`.

load/bench_broadcast compares the modes at the issue's moderate load. This runs one crowded room
(default 50 clients at 10 edits/s each: 500 edits/s, 24,500 deliveries/s) against our server in
each mode (`JACAMENO_COLLAB_BROADCAST=after-commit|on-receipt`), alternated round by round on each
database, and while the clients edit it times the room owner's project commands (a rename every
`--command-interval` seconds, each waiting for the read model as every command does) and samples
the projections' lag from `/metrics`. What it prints per run: fan-out and durable-ack p50/p99,
the commands' p50/max, the projections' lag p99 and max, and the server's CPU (its process's,
and per 1,000 deliveries with the database's counted in). A mode whose sends do not batch
themselves as the load grows shows here as slower acknowledgements and commands, even where
its fan-out is faster (docs/collaboration.md, "Why after-commit is the default")."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from harness.server import ServerProcess
from harness.waiting import wait_until
from load import bench_collab as bench
from load.bench_broadcast import MODES, broadcast_mode, outcome, table
from load.collab_client import Ledger
from load.projection_lag import LagSampler
from load.report import write_json
from load.stats import percentile

WINDOW_WAIT = 3600.0  # seconds: the watch is cancelled when the run ends, never timed out
COMMAND_TIMEOUT = 120.0  # seconds: a command slower than this is a failure of the run


@dataclass(slots=True)
class CommandWatch:
    """Renames the first room's project every `interval` seconds while the window is open
    (the next one once the last answered), and samples the projections' lag meanwhile."""

    interval: float
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lag: LagSampler = field(default_factory=LagSampler)

    async def __call__(
        self, server: ServerProcess, ledger: Ledger, rooms: list[bench.Opened]
    ) -> None:
        sampling = asyncio.create_task(self.lag.watch(server, ledger, rooms))
        try:
            await self._commands(server, ledger, rooms[0])
        finally:
            sampling.cancel()

    async def _commands(self, server: ServerProcess, ledger: Ledger, room: bench.Opened) -> None:
        await wait_until(lambda: ledger.measuring, "the window opens", WINDOW_WAIT)
        async with server.http(timeout=COMMAND_TIMEOUT) as http:
            n = 0
            while ledger.measuring:
                n += 1
                started = time.perf_counter()
                response = await http.patch(
                    f"/api/projects/{room.project_id}",
                    json={"title": f"Renamed {n}"},
                    headers=room.owner.headers,
                )
                self.seconds.append(time.perf_counter() - started)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                await asyncio.sleep(self.interval)

    def figures(self) -> dict[str, Any]:
        def ms(q: float) -> float | None:
            return round(percentile(self.seconds, q) * 1000, 1) if self.seconds else None

        lags = [v for values in self.lag.lag.values() for v in values]
        return {
            "commands": len(self.seconds),
            "command_failures": self.failures,
            "command_p50_ms": ms(50),
            "command_max_ms": ms(100),
            "projection_lag_p99_s": round(percentile(lags, 99), 3) if lags else None,
            "projection_lag_max_s": round(max(lags), 3) if lags else None,
        }


def row(mode: str, backend: str, result: dict[str, Any], watch: CommandWatch) -> dict[str, Any]:
    fanout, ack = result["fanout"], result["ack"]
    return {
        "mode": mode,
        "backend": backend,
        "fanout_p50_ms": fanout.get("p50_ms"),
        "fanout_p99_ms": fanout.get("p99_ms"),
        "ack_p50_ms": ack.get("p50_ms"),
        "ack_p99_ms": ack.get("p99_ms"),
        **watch.figures(),
        "server_cores": round(result["server"]["cpu_cores"], 3),
        **outcome(result),
    }


COLUMNS = [
    ("mode", "mode", 13),
    ("backend", "db", 9),
    ("fanout_p50_ms", "fo p50", 8),
    ("fanout_p99_ms", "fo p99", 8),
    ("ack_p50_ms", "ack p50", 8),
    ("ack_p99_ms", "ack p99", 8),
    ("commands", "cmds", 5),
    ("command_p50_ms", "cmd p50", 8),
    ("command_max_ms", "cmd max", 8),
    ("projection_lag_p99_s", "lag p99 s", 10),
    ("projection_lag_max_s", "lag max s", 10),
    ("server_cores", "cores", 6),
    ("cpu_ms_per_1000_with_database", "cpu/1k", 8),
    ("missing", "missing", 8),
]


def summary(rows: list[dict[str, Any]]) -> str:
    """Per database, each mode's medians over the rounds, on-receipt's over after-commit's."""
    keys = ("fanout_p99_ms", "ack_p50_ms", "ack_p99_ms", "command_p50_ms", "server_cores")
    lines = []
    for backend in dict.fromkeys(r["backend"] for r in rows):
        medians: dict[str, dict[str, float]] = {}
        for mode in MODES:
            mine = [r for r in rows if (r["backend"], r["mode"]) == (backend, mode)]
            medians[mode] = {
                k: statistics.median(r[k] for r in mine if r[k] is not None)
                for k in keys
                if any(r[k] is not None for r in mine)
            }
        after, early = medians.get(MODES[0], {}), medians.get(MODES[1], {})
        ratios = ", ".join(
            f"{k} {early[k] / after[k]:.2f}" for k in keys if after.get(k) and k in early
        )
        lines.append(f"{backend}: on-receipt / after-commit medians: {ratios}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat()
    shape = bench.Shape(args.clients, 1, args.rate)
    rows: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        for backend in args.backends:
            for mode in MODES:
                print(f"round {round_number}: {backend}, {mode}", file=sys.stderr, flush=True)
                plan = bench.Plan(
                    shape=shape,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    users=shape.clients,
                    backend=backend,
                    dsn=args.postgres,
                    js=args.js,
                )
                watch = CommandWatch(args.command_interval)
                with broadcast_mode(mode):
                    result = await bench.run_shape(plan, keep_database=False, watch=watch)
                rows.append({"round": round_number} | row(mode, backend, result, watch))
    return {
        "benchmark": "flood",
        "command": " ".join(["python -m load.bench_flood", *sys.argv[1:]]),
        "started_at": started_at,
        "shape": str(shape),
        "rows": rows,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load.bench_flood", description=__doc__)
    parser.add_argument("--clients", type=int, default=50, help="all in one room")
    parser.add_argument("--rate", type=float, default=10.0, help="edits per second per client")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds")
    parser.add_argument(
        "--command-interval", type=float, default=0.2, help="seconds between project commands"
    )
    parser.add_argument(
        "--backends", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--postgres", default=bench.DEFAULT_DSN, metavar="ADMIN_DSN")
    parser.add_argument("--js", action="store_true", help="JavaScript yjs clients (load/js)")
    parser.add_argument("--results", type=Path, default=bench.RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    document = uvloop.run(run(args))
    print(table(document["rows"], COLUMNS))
    print(summary(document["rows"]))
    stamp = datetime.fromisoformat(document["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    for path in write_json(args.results, stamp, document, name="flood"):
        print(f"wrote {path}")
    failed = [r for r in document["rows"] if r["missing"] or r["command_failures"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
