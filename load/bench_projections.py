"""Projection benchmark: `python -m load.bench_projections`.

On a fresh database (SQLite, Postgres or both), writes a studio's log (load/studio_log.py: N
`doc.updated` events of real Yjs updates in P projects, with their creation, membership and
session events and snapshots), then measures in the same run: the raw `read_all` rate of the
whole log in pages of 1,000 (the baseline); for each read model of projections/registry.py, alone
in a ProjectionRunner, the apply throughput from position 0 to the head (events of the log per
second, and as a ratio to the baseline); then the time to rebuild it (`runner.rebuild`, beside
the live model already built).

`--lag` instead runs the collaboration load of load/bench_collab (200 clients / 20 rooms / 10
edits/s by default) against a server on Postgres, samples each projection's lag from the
server's `/metrics` every 100 ms during the measured window, and reports p50/p99/max of the
seconds behind (load/projection_lag.py)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventstore import EventStore
from harness.databases import migrated_sqlite, open_store, postgres_database
from load import projection_lag, studio_log
from load.report import Figure, Target, table
from load.stats import Measurement
from projections.registry import read_models
from projections.runner import BATCH_SIZE, Projection, ProjectionRunner
from sqldb import Database, open_database

BENCH_DATABASE = "jacameno_bench_projections"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PAGE = 1000
TARGETS = {"document": Target(10_000), "analytics": Target(20_000)}  # issue 10, on this machine
APPLY_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: studio_log.Sizes
    batch_size: int  # the runner's: events per read and per apply transaction
    append_window: int
    databases: tuple[str, ...]
    dsn: str
    keep_database: bool
    cache: Path | None


def _say(text: str) -> None:
    print(f"[projections {time.perf_counter() - _T0:7.1f} s] {text}", file=sys.stderr, flush=True)


_T0 = time.perf_counter()


@contextlib.asynccontextmanager
async def fresh(kind: str, plan: Plan) -> AsyncIterator[tuple[EventStore, Database]]:
    """An empty, migrated database of `kind`: its event store and its tables."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="jacameno-bench-projections-") as folder:
            url = f"sqlite:///{migrated_sqlite(Path(folder))}"
            async with _opened(url) as opened:
                yield opened
        return
    async with (
        postgres_database(
            plan.dsn, name=BENCH_DATABASE, migrate=True, keep=plan.keep_database
        ) as url,
        _opened(url) as opened,
    ):
        yield opened


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[tuple[EventStore, Database]]:
    store = await open_store(url)
    try:
        db = await open_database(url)
        try:
            yield store, db
        finally:
            await db.close()
    finally:
        await store.close()


async def read_everything(store: EventStore) -> tuple[Measurement, collections.Counter[str]]:
    """The baseline: `read_all` from 0 to the head in pages of PAGE; the events by type."""
    types: collections.Counter[str] = collections.Counter()
    latencies = []
    position = 0
    started = time.perf_counter()
    while True:
        before = time.perf_counter()
        page = await store.read_all(position, PAGE)
        latencies.append(time.perf_counter() - before)
        if not page:
            break
        types.update(e.type for e in page)
        position = page[-1].position
    return Measurement(position, time.perf_counter() - started, latencies), types


async def measure_projection(
    store: EventStore, db: Database, projection: Projection, head: int, plan: Plan, of_types: int
) -> tuple[Measurement, Measurement]:
    """Apply `projection` alone from 0 to `head`, then rebuild it beside the live model."""
    name = projection.name
    runner = ProjectionRunner(store, db, [projection], batch_size=plan.batch_size)
    await runner.prepare()  # its tables: not part of the measurement
    try:
        started = time.perf_counter()
        await runner.start()
        await runner.wait_for(head, timeout=APPLY_TIMEOUT, only=[name])
        applied = Measurement(
            head, time.perf_counter() - started, extra={"events of its types": of_types}
        )
        _say(f"{name}: applied {head:,} events in {applied.seconds:.1f} s; rebuilding")
        started = time.perf_counter()
        position = await runner.rebuild(name)
        seconds = time.perf_counter() - started
        rebuilt = Measurement(position, seconds, extra={"seconds": seconds})
        _say(f"{name}: rebuilt in {rebuilt.seconds:.1f} s")
    finally:
        await runner.stop()
    return applied, rebuilt


async def measure(kind: str, plan: Plan, log: studio_log.StudioLog) -> dict[str, Any]:
    async with fresh(kind, plan) as (store, db):
        _say(f"{kind}: appending {len(log.events):,} events")
        started = time.perf_counter()
        await studio_log.write(store, log, plan.append_window, _say)
        append_seconds = time.perf_counter() - started
        head = await store.head_position()
        _say(f"{kind}: read_all baseline")
        baseline, types = await read_everything(store)
        ceilings = [
            Figure("read_all", f"baseline: read_all, pages of {PAGE:,}", "events/s", baseline)
        ]
        figures: list[Figure] = []
        for projection in read_models(store):
            name = projection.name
            of_types = sum(types[t] for t in projection.event_types)
            _say(f"{kind}: {name} from 0 ({of_types:,} events of its types)")
            applied, rebuilt = await measure_projection(store, db, projection, head, plan, of_types)
            figures.append(
                Figure(
                    f"{name}_apply",
                    f"{name}: apply 0 -> head",
                    "events/s",
                    applied,
                    TARGETS.get(name),
                    "read_all",
                )
            )
            figures.append(
                Figure(
                    f"{name}_rebuild", f"{name}: rebuild beside the live model", "events/s", rebuilt
                )
            )
        print(table(kind, ceilings, figures), flush=True)
        by_key = {c.key: c for c in ceilings}
        return {
            "head": head,
            "events_by_type": dict(types),
            "append_seconds": round(append_seconds, 2),
            "baseline": {"label": ceilings[0].label} | baseline.to_json(),
            "figures": {f.key: f.to_json(by_key) for f in figures},
            "loadavg_after": os.getloadavg(),
        }


async def run(plan: Plan) -> dict[str, Any]:
    started = datetime.now(UTC)
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    log = await asyncio.to_thread(studio_log.cached, plan.sizes, plan.cache, _say)
    sizes = plan.sizes
    print(
        f"log: {sizes.updates:,} doc.updated in {sizes.projects:,} projects ({sizes.active}"
        f" sessions at once, seed {sizes.seed}); {len(log.events):,} events,"
        f" {len(log.snapshots):,} snapshots; runner batch size {plan.batch_size}"
    )
    document: dict[str, Any] = {
        "benchmark": "projections",
        "started_at": started.isoformat(),
        "command": " ".join(["python -m load.bench_projections", *sys.argv[1:]]),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
        },
        "log": {
            "updates": sizes.updates,
            "projects": sizes.projects,
            "active_sessions": sizes.active,
            "seed": sizes.seed,
            "events": len(log.events),
            "snapshots": len(log.snapshots),
        },
        "batch_size": plan.batch_size,
        "targets": {name: t.describe("events/s") for name, t in TARGETS.items()},
        "databases": {},
    }
    for kind in plan.databases:
        document["databases"][kind] = await measure(kind, plan, log)
    document["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return document


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_projections", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--events", type=_positive, default=1_000_000, help="doc.updated events (%(default)s)"
    )
    parser.add_argument("--projects", type=_positive, default=1_000, help="(%(default)s)")
    parser.add_argument(
        "--active", type=_positive, default=32, help="sessions running at once (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the generated log (%(default)s)")
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=BATCH_SIZE,
        help="the runner's batch: events per read and per apply transaction (%(default)s, the"
        " runner's default)",
    )
    parser.add_argument(
        "--append-window", type=_positive, default=1000, help="events per append round"
    )
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="both", help="(%(default)s)"
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("JACAMENO_BENCH_DATABASE_URL", DEFAULT_DSN),
        help=f"admin DSN; the run makes a fresh database {BENCH_DATABASE!r} there (Postgres)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help=f"do not drop {BENCH_DATABASE!r}"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder of the generated logs (default: jacameno-bench-projections in the temp dir)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the run as JSON to PATH")
    parser.add_argument(
        "--lag",
        action="store_true",
        help="instead: the projections' lag under the collaboration load, on Postgres",
    )
    parser.add_argument("--clients", type=_positive, default=200, help="--lag: (%(default)s)")
    parser.add_argument("--rooms", type=_positive, default=20, help="--lag: (%(default)s)")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="--lag: edits/s per client (%(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="--lag: measured window (%(default)s)"
    )
    args = parser.parse_args(argv)
    if args.events < args.projects:
        parser.error("--events must be at least --projects")
    if args.rooms > args.clients:
        parser.error("--rooms must not exceed --clients")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.lag:
        document = projection_lag.main(args)
    else:
        plan = Plan(
            sizes=studio_log.Sizes(args.events, args.projects, args.seed, args.active),
            batch_size=args.batch_size,
            append_window=args.append_window,
            databases=("sqlite", "postgres") if args.database == "both" else (args.database,),
            dsn=args.dsn,
            keep_database=args.keep_database,
            cache=args.cache,
        )
        document = asyncio.run(run(plan))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
