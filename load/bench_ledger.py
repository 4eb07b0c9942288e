"""What on-receipt mode's ledger of early broadcasts costs (jacameno.collab.ledger):
`python -m load.bench_ledger`.

On-receipt mode records, for each update it broadcasts before its commit, which clocks of which
Yjs client it sent for which user. This paces records as the broadcast benchmark's load makes
them (50 clients in 10 projects, 250 edits a second: one record per edit, every edit delivered to
the 4 other sockets of its room), on each kind of ledger, and measures the CPU they cost: the
process's (the event loop and the ledger's thread) and, for Postgres, its backends'. Each way is
measured beside baselines of the same run, interleaved round by round:

- `idle`: the same paced loop recording nothing (its own cost, taken off the others);
- `statement`: the ledger's upsert alone, one per record, autocommit, on a connection held open
  (SQLite: in the event loop's thread, no thread hop; Postgres: asyncpg, no pool);
- `ledger`: `EarlyLedger.record`, as the rooms call it (then `flushed` once, at the end);
- SQLite, `via loop`: the same ledger written as before 24b52eb, through the event loop and the
  SQL layer's thread (`EarlyLedger.open` on an `SQLiteDatabase`), instead of in the event loop's
  own thread once per turn (before 13acb38, by a thread of its own fed through a queue, which
  cost less CPU here but slowed a busy node's acknowledgements: see docs/benchmarks.md);
- Postgres, `via pool`: the same ledger without a writer of its own, as before: a connection
  taken from the node's pool for each write, instead of one of its own held while records
  keep coming.

Prints microseconds of CPU per record and milliseconds per 1,000 deliveries, and writes JSON to
`load/results/ledger-*.json`. Run it while nothing else runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from dbdrivers.sqlite import connect
from harness.databases import postgres_database
from jacameno.collab import ledger as ledger_module
from jacameno.collab.ledger import EarlyLedger, Sent
from load.collab_server import pids_cpu
from load.report import write_json
from sqldb import SQLiteDatabase, open_database

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RATE = 250.0  # records per second: 50 clients, 5 edits a second each
DELIVERIES_PER_RECORD = 4  # each edit reaches the 4 other sockets of its room
CLIENTS, PROJECTS = 50, 10

Record = Callable[[int], Awaitable[None] | None]


def _sent(i: int) -> tuple[str, Sent]:
    client = i % CLIENTS
    return f"project-{client % PROJECTS}", Sent(client, i, i + 1, f"user-{client}", f"c-{client}")


async def _paced(record: Record, count: int, bunch: int) -> None:
    """`count` records at RATE, `bunch` at a time (edits of several clients arriving together),
    each bunch started on schedule (a late one does not delay the next)."""
    start = time.perf_counter()
    for i in range(count):
        done = record(i)
        if done is not None:
            await done
        if (i + 1) % bunch == 0:
            delay = start + (i + 1) / RATE - time.perf_counter()
            await asyncio.sleep(max(delay, 0.0))


async def _backend_pids(conn: asyncpg.Connection, database: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return [int(r["pid"]) for r in rows]


async def _cpu(
    record: Record, count: int, bunch: int, finish: Callable[[], Awaitable[None]], backends: Any
) -> float:
    """CPU seconds `count` paced records cost: the process's and the database's backends'."""
    pids = await backends()
    process, database = time.process_time(), pids_cpu(pids)
    await _paced(record, count, bunch)
    await finish()
    return time.process_time() - process + pids_cpu(pids) - database


async def _nothing() -> None:
    return None


def _ways(
    statement: Record, ledger: EarlyLedger, before: str, previous: EarlyLedger
) -> dict[str, tuple[Record, Any]]:
    """The ways measured on one kind of ledger: nothing, the bare `statement`, `ledger`, and
    the `previous` way of writing it (named `before`)."""
    return {
        "idle": (lambda i: None, _nothing),
        "statement": (statement, _nothing),
        "ledger": (lambda i: ledger.record(*_sent(i)), ledger.flushed),
        before: (lambda i: previous.record(*_sent(i)), previous.flushed),
    }


@contextlib.asynccontextmanager
async def _sqlite_ways(folder: Path) -> AsyncIterator[dict[str, tuple[Record, Any]]]:
    path = folder / "jacameno.db.early"
    ledger = await EarlyLedger.open_file(path, keep_seconds=3600)
    raw = connect(folder / "raw.early", synchronous="OFF")
    raw.execute(ledger_module._CREATE.format(unlogged="", table=ledger_module.TABLE))
    upsert = ledger_module._sqlite(ledger_module._UPSERT.format(least="min", greatest="max"))
    pooled_db = await SQLiteDatabase.open(folder / "pooled.early")
    pooled = await EarlyLedger.open(pooled_db, keep_seconds=3600)

    def statement(i: int) -> None:
        project, sent = _sent(i)
        raw.execute(upsert, (project, sent.client, sent.user_id, sent.connection_id, i, i + 1, 0))

    try:
        yield _ways(statement, ledger, "via loop", pooled)
    finally:
        raw.close()
        await ledger.close()
        await pooled.close()
        await pooled_db.close()


@contextlib.asynccontextmanager
async def _postgres_ways(dsn: str) -> AsyncIterator[dict[str, tuple[Record, Any]]]:
    db = await open_database(dsn)
    writer = await open_database(dsn, pool_size=1)  # as the server opens it
    ledger = await EarlyLedger.open(db, keep_seconds=3600, writer=writer)
    pooled = await EarlyLedger.open(db, keep_seconds=3600)
    raw = await asyncpg.connect(dsn)
    upsert = ledger_module._UPSERT.format(least="LEAST", greatest="GREATEST")

    async def statement(i: int) -> None:
        project, sent = _sent(i)
        await raw.execute(
            upsert, project, sent.client, sent.user_id, sent.connection_id, i, i + 1, 0
        )

    try:
        yield _ways(statement, ledger, "via pool", pooled)
    finally:
        await raw.close()
        for each in (ledger, pooled):
            await each.close()
        await db.close()


async def run(
    admin_dsn: str, rounds: int, seconds: float, bunch: int
) -> dict[str, dict[str, list[float]]]:
    """CPU seconds per record of each way on each kind of ledger, `rounds` runs of each."""
    count = int(RATE * seconds)
    results: dict[str, dict[str, list[float]]] = {}
    admin = await asyncpg.connect(admin_dsn)
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with (
                postgres_database(admin_dsn, prefix="jbl") as dsn,
                _sqlite_ways(Path(folder)) as sqlite_ways,
                _postgres_ways(dsn) as postgres_ways,
            ):
                database = dsn.rsplit("/", 1)[1].split("?")[0]
                kinds = {
                    "sqlite file": (sqlite_ways, lambda: asyncio.sleep(0, [])),
                    "postgres": (postgres_ways, lambda: _backend_pids(admin, database)),
                }
                for round_ in range(rounds):
                    for kind, (ways, backends) in kinds.items():
                        for way, (record, finish) in ways.items():
                            cpu = await _cpu(record, count, bunch, finish, backends)
                            results.setdefault(kind, {}).setdefault(way, []).append(cpu / count)
                            print(
                                f"round {round_ + 1} {kind:11} {way:9}"
                                f" {cpu / count * 1e6:7.1f} us/record",
                                file=sys.stderr,
                            )
    finally:
        await admin.close()
    return results


def report(results: dict[str, dict[str, list[float]]]) -> str:
    lines = [f"{'ledger':11} {'way':9} {'us/record':>9} {'over idle':>9} {'ms/1k deliveries':>16}"]
    for kind, ways in results.items():
        idle = sorted(ways["idle"])[len(ways["idle"]) // 2]
        for way, values in ways.items():
            median = sorted(values)[len(values) // 2]
            over = median - idle
            per_k = over * 1000 / DELIVERIES_PER_RECORD * 1000
            lines.append(
                f"{kind:11} {way:9} {median * 1e6:9.1f} {over * 1e6:9.1f}"
                f" {per_k if way != 'idle' else 0:16.1f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_DSN, metavar="ADMIN_DSN")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="per way and round")
    parser.add_argument(
        "--bunch", type=int, default=1, help="records made together (several clients' edits)"
    )
    args = parser.parse_args()
    results = uvloop.run(run(args.postgres, args.rounds, args.seconds, args.bunch))
    print(report(results))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "rate": RATE,
        "bunch": args.bunch,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "cpu": results,
    }
    for path in write_json(RESULTS, stamp, document, name="ledger"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
