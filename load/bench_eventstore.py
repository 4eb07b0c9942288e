"""Event store benchmark: `python -m load.bench_eventstore` (`make bench`).

For each backend, in one run: the database's raw ceilings on this machine (batched inserts,
single durable commits), then the store's figures (batched appends, 64 concurrent single-event
appenders through group commit, a catch-up subscriber), each beside its target and as a ratio to
the ceiling measured in the same run, so that a noisy machine shows as low ceilings too."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from dbdrivers.postgres import server_settings
from dbdrivers.sqlite import connect
from eventstore import EventStore
from eventstore.pgsession import WRITER
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from harness.databases import postgres_database
from load import scenarios
from load.ceilings import PostgresCeiling, SQLiteCeiling
from load.report import Figure, Target, table, write_json
from load.workload import Workload
from sqldb.migrate import migrate_sqlite

BENCH_DATABASE = "jacameno_bench"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"

BATCHED = Target(100_000)
APPENDERS = Target(15_000, max_p99_ms=20)
SUBSCRIBER = Target(200_000)


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and durations of one run."""

    events: int  # per batched scenario, and rows of the batched-insert ceiling
    max_seconds: float  # cap of each count-bounded scenario
    appenders: int
    appender_seconds: float
    warmup_seconds: float
    commit_seconds: float  # single-commit ceiling
    subscribe_batch: int
    rounds: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        quick = bool(args.quick)
        events = args.events or (5_000 if quick else 200_000)
        return cls(
            events=events,
            max_seconds=3.0 if quick else 20.0,
            appenders=args.appenders,
            appender_seconds=args.seconds or (1.0 if quick else 6.0),
            warmup_seconds=0.2 if quick else 0.5,
            commit_seconds=1.0 if quick else 3.0,
            subscribe_batch=args.subscribe_batch,
            rounds=args.rounds or (3 if args.peer else 1 if quick else 2),
        )


@dataclass(slots=True)
class BackendRun:
    """An open store plus what the ceilings need, for one backend."""

    name: str
    store: EventStore
    ceiling: PostgresCeiling | SQLiteCeiling
    settings: dict[str, Any]
    location: str  # the SQLite file, or the Postgres DSN: where the peer goes too


@contextlib.asynccontextmanager
async def sqlite_backend(workload: Workload, folder: str | None) -> AsyncIterator[BackendRun]:
    with tempfile.TemporaryDirectory(prefix="jacameno-bench-", dir=folder) as tmp:
        path = str(Path(tmp) / "events.db")
        migrate_sqlite(path)
        # The pragmas of a connection opened as the store opens its own (journal_mode is the
        # file's; synchronous, the connection's, is the store's default too).
        conn = connect(path)
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            conn.close()
        settings = {
            "path": path,
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": mode,
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, sync),
        }
        store = await SQLiteEventStore.open(path)
        try:
            yield BackendRun("sqlite", store, SQLiteCeiling(path, workload), settings, path)
        finally:
            await store.close()


SERVER_SETTINGS = (
    "server_version",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "shared_buffers",
    "commit_delay",
    "wal_level",
)


@contextlib.asynccontextmanager
async def postgres_backend(
    workload: Workload, admin_dsn: str, keep: bool
) -> AsyncIterator[BackendRun]:
    async with postgres_database(admin_dsn, name=BENCH_DATABASE, migrate=True, keep=keep) as dsn:
        # A session set up as the store's writer sets up its own: the setting its commits run
        # under.
        conn = await asyncpg.connect(dsn, server_settings=server_settings(dsn, "bench", WRITER))
        try:
            server: dict[str, Any] = {n: await conn.fetchval(f"SHOW {n}") for n in SERVER_SETTINGS}
            server["synchronous_commit (store writer)"] = await conn.fetchval(
                "SHOW synchronous_commit"
            )
        finally:
            await conn.close()
        store = await PostgresEventStore.open(dsn)
        try:
            # The writer connects on the first append: not inside a measured scenario.
            await store.append("bench-setup", workload.events(1))
            yield BackendRun(
                "postgres",
                store,
                PostgresCeiling(dsn, workload),
                {"database": BENCH_DATABASE, **server},
                dsn,
            )
        finally:
            await store.close()


async def measure(run: BackendRun, workload: Workload, plan: Plan) -> dict[str, Any]:
    """Every figure of one backend, best of `plan.rounds` rounds (each round measures the
    ceilings and then the store); prints its table."""
    rounds = [await one_round(run, workload, plan, n + 1) for n in range(plan.rounds)]
    ceilings = _best([r[0] for r in rounds])
    figures = _best([r[1] for r in rounds])
    print(table(run.name, ceilings, figures), flush=True)
    by_key = {c.key: c for c in ceilings}
    return {
        "settings": run.settings,
        "ceilings": {
            c.key: {"label": c.label, "unit": c.unit} | c.measurement.to_json() for c in ceilings
        },
        "figures": {f.key: f.to_json(by_key) for f in figures},
        "rounds": [{f.key: round(f.measurement.rate, 1) for f in [*c, *f]} for c, f in rounds],
    }


def _best(rounds: list[list[Figure]]) -> list[Figure]:
    """Per figure, the round with the highest rate: on a shared machine, the least disturbed."""
    return [
        max((r[i] for r in rounds), key=lambda f: f.measurement.rate) for i in range(len(rounds[0]))
    ]


async def one_round(
    run: BackendRun, workload: Workload, plan: Plan, number: int
) -> tuple[list[Figure], list[Figure]]:
    """The ceilings, then the store's figures, once."""
    say = _progress(f"{run.name} round {number}/{plan.rounds}")
    ceiling = run.ceiling
    say("ceiling: batched inserts")
    ceilings = [
        Figure(
            "batched_insert",
            "ceiling: raw inserts, 1,000 rows/transaction",
            "rows/s",
            await ceiling.batched_inserts(plan.events, 1000, plan.max_seconds),
        )
    ]
    ceilings.append(
        Figure(
            "batched_insert_100",
            "ceiling: raw inserts, 100 rows/transaction",
            "rows/s",
            await ceiling.batched_inserts(plan.events // 2, 100, plan.max_seconds / 2),
        )
    )
    if isinstance(ceiling, PostgresCeiling):
        say("ceiling: COPY")
        ceilings.append(
            Figure(
                "copy_insert",
                "ceiling: raw COPY, 1,000 rows/transaction",
                "rows/s",
                await ceiling.copy_inserts(plan.events, 1000, plan.max_seconds),
            )
        )
    say("ceiling: single commits")
    ceilings.append(
        Figure(
            "single_commit",
            "ceiling: raw 1-row INSERT + COMMIT, sequential",
            "commits/s",
            await ceiling.single_commits(plan.commit_seconds),
        )
    )
    figures: list[Figure] = []
    for batch in (100, 1000):
        say(f"appends of {batch}")
        m = await scenarios.batched_appends(
            run.store, workload, batch=batch, events=plan.events, max_seconds=plan.max_seconds
        )
        figures.append(
            Figure(
                f"append_batch_{batch}",
                f"1 writer, appends of {batch:,} events",
                "events/s",
                m,
                BATCHED,
                "batched_insert",
                "batched_insert_100" if batch == 100 else None,
            )
        )
    say(f"{plan.appenders} appenders")
    m = await scenarios.concurrent_appenders(
        run.store,
        workload,
        tasks=plan.appenders,
        seconds=plan.appender_seconds,
        warmup=plan.warmup_seconds,
    )
    figures.append(
        Figure(
            "appenders",
            f"{plan.appenders} tasks appending 1 event each",
            "events/s",
            m,
            APPENDERS,
            "single_commit",
        )
    )
    say("subscriber")
    m = await scenarios.catch_up(run.store, batch_size=plan.subscribe_batch)
    figures.append(
        Figure(
            "subscriber",
            f"subscriber from 0, pages of {plan.subscribe_batch:,}",
            "events/s",
            m,
            SUBSCRIBER,
        )
    )
    return ceilings, figures


async def against_peer(
    run: BackendRun, workload: Workload, plan: Plan, args: argparse.Namespace
) -> dict[str, Any]:
    """Our store and eventsourcing's recorder, figure by figure in the same rounds."""
    # Imported here: the peer is a benchmark-only extra, and the plain run does not need it.
    from load import bench_peer, peer

    threads = max(4, plan.appenders)  # the peer's writers are threads of its own executor
    opened: contextlib.AbstractAsyncContextManager[peer.Peer]
    if run.name == "sqlite":
        # A file of its own beside ours: sharing one would share one WAL and its checkpoints.
        opened = peer.sqlite_peer(str(Path(run.location).with_name("peer.db")), threads)
    else:
        opened = peer.postgres_peer(run.location, threads)
    async with opened as other:
        print(f"peer: {', '.join(f'{k}={v}' for k, v in other.settings.items())}", flush=True)
        result = await bench_peer.compare(
            run.name,
            run.store,
            other,
            run.ceiling,
            workload,
            events=plan.events,
            max_seconds=plan.max_seconds,
            appenders=plan.appenders,
            appender_seconds=plan.appender_seconds,
            warmup_seconds=plan.warmup_seconds,
            subscribe_batch=plan.subscribe_batch,
            rounds=plan.rounds,
            say=_progress(run.name),
        )
    return {"settings": run.settings, "peer_settings": other.settings, **result}


def _progress(backend: str) -> Callable[[str], None]:
    def say(step: str) -> None:
        print(f"[{backend}] {step} ...", file=sys.stderr, flush=True)

    return say


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan.from_args(args)
    workload = Workload()
    started = datetime.now(UTC)
    shape = workload.shape()
    print(
        f"events: type {shape['type']!r} ({shape['type_bytes']} B), data {shape['data_bytes']} B,"
        f" metadata {shape['metadata']} = {shape['metadata_json_bytes']} B of JSON,"
        f" stream names {shape['stream_name_bytes']} B, no idempotency key"
    )
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    document: dict[str, Any] = {
        "benchmark": "eventstore",
        "started_at": started.isoformat(),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
        },
        "plan": {k: getattr(plan, k) for k in plan.__dataclass_fields__},
        "quick": bool(args.quick),
        "workload": shape,
        "targets": {
            "batched_appends": BATCHED.describe("events/s"),
            "appenders": APPENDERS.describe("events/s"),
            "subscriber": SUBSCRIBER.describe("events/s"),
        },
        "backends": {},
    }
    for backend in args.backends:
        backends: contextlib.AbstractAsyncContextManager[BackendRun]
        if backend == "sqlite":
            backends = sqlite_backend(workload, args.sqlite_dir)
        else:
            backends = postgres_backend(workload, args.dsn, args.keep_database)
        async with backends as opened:
            settings = ", ".join(f"{k}={v}" for k, v in opened.settings.items() if k != "path")
            print(f"\n{backend}: {settings}", flush=True)
            if args.peer:
                document["backends"][backend] = await against_peer(opened, workload, plan, args)
            else:
                document["backends"][backend] = await measure(opened, workload, plan)
            document["backends"][backend]["loadavg_after"] = os.getloadavg()
    document["host"]["loadavg_at_end"] = os.getloadavg()
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    document["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return document


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_eventstore", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
        help="comma-separated: sqlite, postgres (default: both)",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("JACAMENO_BENCH_DATABASE_URL", DEFAULT_DSN),
        help=f"admin DSN; the run creates a fresh database {BENCH_DATABASE!r} on that server"
        " (default: $JACAMENO_BENCH_DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per batched scenario and rows of the insert ceiling (default 200,000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="duration of the concurrent appenders scenario (default 6)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="measure everything this many times, report the best of each (default 2; quick 1;"
        " --peer: the median, default 3)",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="measure eventsourcing's application recorder too, in the same rounds (needs the"
        " `peer` extra); medians of the rounds (default 3) for both stores and their ratio",
    )
    parser.add_argument("--appenders", type=int, default=64, help="concurrent appenders")
    parser.add_argument(
        "--subscribe-batch", type=int, default=1000, help="subscriber page size (batch_size)"
    )
    parser.add_argument(
        "--sqlite-dir",
        default=None,
        help="folder for the SQLite file (default: a temporary folder)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help=f"do not drop {BENCH_DATABASE!r} at the end"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for JSON results")
    args = parser.parse_args(argv)
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown or not args.backends:
        parser.error(f"unknown backends {sorted(unknown)}; choose from sqlite, postgres")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    document = asyncio.run(run(args))
    stamp = datetime.fromisoformat(document["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    for path in write_json(args.results, stamp, document):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
