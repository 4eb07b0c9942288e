"""The projections' lag under the collaboration load: `python -m load.bench_projections --lag`.

Runs load/bench_collab's shape (a real server on a fresh Postgres database, y-websocket clients
editing) and, during its measured window, reads the server's `/metrics` every 100 ms: the gauge
`jacameno_projection_lag_seconds` of each projection is the runner's `status()` (seconds since
the oldest event it has not applied was recorded; 0 when it is at the head). Reported per
projection: p50, p99 and max of those samples, against the issue's target (p99 <= 1 s)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvloop
from prometheus_client.parser import text_string_to_metric_families

from harness.server import ServerProcess
from load import bench_collab
from load.collab_client import Ledger
from load.stats import percentile

INTERVAL = 0.1  # seconds between samples
LAG_METRIC = "jacameno_projection_lag_seconds"
TARGET_P99_SECONDS = 1.0


@dataclass(slots=True)
class LagSampler:
    """The lag of each projection, sampled while the window is open; how long `/metrics` took."""

    lag: dict[str, list[float]] = field(default_factory=dict)
    request_seconds: list[float] = field(default_factory=list)

    async def watch(self, server: ServerProcess, ledger: Ledger, _rooms: object) -> None:
        async with server.http(timeout=10) as http:
            due = time.perf_counter()
            while True:
                due += INTERVAL
                if ledger.measuring:
                    started = time.perf_counter()
                    response = await http.get("/metrics")
                    response.raise_for_status()
                    self.request_seconds.append(time.perf_counter() - started)
                    self.read(response.text)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

    def read(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            if family.name == LAG_METRIC:
                for sample in family.samples:
                    self.lag.setdefault(sample.labels["projection"], []).append(sample.value)

    def figures(self) -> dict[str, dict[str, Any]]:
        result = {}
        for name, values in sorted(self.lag.items()):
            p99 = percentile(values, 99)
            result[name] = {
                "samples": len(values),
                "p50_seconds": round(percentile(values, 50), 3),
                "p99_seconds": round(p99, 3),
                "max_seconds": round(max(values), 3),
                "target": f"p99 <= {TARGET_P99_SECONDS:g} s",
                "target_met": p99 <= TARGET_P99_SECONDS,
            }
        return result


def table(figures: dict[str, dict[str, Any]], request_seconds: list[float]) -> str:
    header = f"{'projection':<16} {'samples':>7} {'p50 s':>7} {'p99 s':>7} {'max s':>7}  target"
    lines = ["== projections' lag (seconds behind), sampled every 100 ms ==", header]
    lines.append("-" * len(header))
    for name, f in figures.items():
        met = "yes" if f["target_met"] else "NO"
        lines.append(
            f"{name:<16} {f['samples']:>7} {f['p50_seconds']:>7.3f} {f['p99_seconds']:>7.3f}"
            f" {f['max_seconds']:>7.3f}  {f['target']} {met}"
        )
    if request_seconds:
        lines.append(
            f"GET /metrics: p50 {percentile(request_seconds, 50) * 1000:.1f} ms,"
            f" p99 {percentile(request_seconds, 99) * 1000:.1f} ms"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    shape = bench_collab.Shape(args.clients, args.rooms, args.rate)
    plan = bench_collab.Plan(
        shape=shape,
        seconds=args.seconds,
        warmup=3.0,
        users=shape.clients,
        backend="postgres",
        dsn=args.dsn,
    )
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    sampler = LagSampler()
    result = await bench_collab.run_shape(plan, args.keep_database, sampler.watch)
    print(bench_collab.table(plan, result), flush=True)
    figures = sampler.figures()
    print(table(figures, sampler.request_seconds), flush=True)
    if not figures:
        raise RuntimeError(f"no {LAG_METRIC} samples: did the window open?")
    return {
        "benchmark": "projections-lag",
        "started_at": started.isoformat(),
        "shape": str(shape),
        "interval_seconds": INTERVAL,
        "lag": figures,
        "metrics_request_p99_ms": round(percentile(sampler.request_seconds, 99) * 1000, 2),
        "collab": {k: v for k, v in result.items() if k not in ("timeline",)},
        "loadavg_after": os.getloadavg(),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    return uvloop.run(run(args))
