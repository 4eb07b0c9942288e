"""The append's own length on Postgres, part by part: `python -m load.bench_commit`.

One durable append of one small edit (a 90-byte update with a room's metadata), made four ways
on a fresh migrated database, interleaved round by round so that a disk whose flush time moves
weighs on each alike, a short pause between commits (no queueing: each is a lone commit):

- `probe`: a one-row insert into a table of its own (the database's floor: one durable commit);
- `statement`: the event store's append statement itself (the sequencer's row, the multi-row
  insert, the notification), sent on a connection of its own;
- `statement, no notify`: the same without `pg_notify`;
- `store.append`: `PostgresEventStore.append`, through its group commit (the hand-over to the
  committer task, deciding the versions, the statement, the answer back).

Prints p50/p90/p99 ms of each and writes JSON to `load/results/commit-*.json`. Run it while
nothing else runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from eventstore import NewEvent
from eventstore.pgwriter import _INSERT
from eventstore.postgres import PostgresEventStore
from harness.databases import postgres_database
from load.report import write_json
from load.stats import percentile

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_NOTIFY = ", pg_notify('es_events', (base + $1)::text)"
DATA = bytes(range(90))
META = {"user_id": "u" * 32, "connection_id": "c" * 32, "node": "bench", "client_id": 123}


async def run(admin_dsn: str, rounds: int, pause: float) -> dict[str, list[float]]:
    """Seconds per commit of each way, `rounds` of each."""
    assert _NOTIFY in _INSERT, "the append statement changed: update this benchmark"
    quiet = _INSERT.replace(_NOTIFY, "")
    metadata = json.dumps(META)
    async with postgres_database(admin_dsn, migrate=True, prefix="jbc") as dsn:
        store = await PostgresEventStore.open(dsn)
        raw = await asyncpg.connect(dsn)
        try:
            await raw.execute("CREATE TABLE bench_probe (id bigserial PRIMARY KEY, v bytea)")
            stream = f"project-{uuid.uuid4()}"
            version = 0

            async def statement(sql: str) -> None:
                nonlocal version
                version += 1
                await raw.fetchrow(
                    sql,
                    1,
                    [f"{stream}-raw"],
                    [version],
                    ["doc.updated"],
                    [DATA],
                    [metadata],
                    [None],
                )

            ways: dict[str, Any] = {
                "probe": lambda: raw.execute("INSERT INTO bench_probe (v) VALUES ($1)", DATA),
                "statement": lambda: statement(_INSERT),
                "statement, no notify": lambda: statement(quiet),
                "store.append": lambda: store.append(stream, [NewEvent("doc.updated", DATA, META)]),
            }
            seconds: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(rounds):
                for name, way in ways.items():
                    started = time.perf_counter()
                    await way()
                    seconds[name].append(time.perf_counter() - started)
                    await asyncio.sleep(pause)
            return seconds
        finally:
            await raw.close()
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_DSN, metavar="ADMIN_DSN")
    parser.add_argument("--rounds", type=int, default=1500, help="commits of each way")
    parser.add_argument("--warmup", type=int, default=100, help="first rounds not counted")
    parser.add_argument("--pause-ms", type=float, default=1.0, help="between two commits")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = datetime.now(UTC)
    seconds = uvloop.run(run(args.postgres, args.rounds + args.warmup, args.pause_ms / 1000))
    figures = {}
    for name, values in seconds.items():
        kept = values[args.warmup :]
        figures[name] = {f"p{q}_ms": round(percentile(kept, q) * 1000, 3) for q in (50, 90, 99)} | {
            "count": len(kept)
        }
        row = figures[name]
        quantiles = "  ".join(f"p{q} {row[f'p{q}_ms']:.3f}" for q in (50, 90, 99))
        print(f"{name:>22}: {quantiles} ms")
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    document = {"benchmark": "commit", "started": started.isoformat(), "figures": figures}
    for path in write_json(args.results, stamp, document, name="commit"):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
