"""The SQL layer's transactions on SQLite, shaped as a projection's batch: `python -m
load.bench_sqldb`.

Each transaction reads a checkpoint, upserts a few rows and moves the checkpoint, as
`projections.applier` does for every batch of every read model (BEGIN, a statement that returns
a row, two that return nothing, COMMIT). `--workers` (4) such writers, one per read model, run
at once on one database, as a server's projections do. Two measurements, each `--seconds` long:

- paced: `--rate` (200) transactions a second in all, the CPU of the whole process (its event
  loop and SQLite's threads) per transaction, and each transaction's time from its start to the
  end of its block, p50 and p99: what a server at a moderate load pays;
- flat out: as many transactions a second as the workers make one after the other.

`--baseline REV` runs the same measurements with the `sqldb` and `dbdrivers` packages of an older
commit (extracted with `git archive`, first on the path of a process of its own), interleaved
round by round with ours (`--rounds`, 3), so that whatever else the machine does hits both alike;
read the ratios. The database is a fresh file in a temporary folder for each run."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import sqldb  # the measured code: ours, or (--inner) the baseline's, first on the path

ROWS = 5  # rows a transaction upserts


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _transaction(db: Any, name: str, n: int) -> None:
    async with db.transaction() as conn:
        position = await conn.fetchval(
            "SELECT position FROM bench_checkpoints WHERE name = $1", name
        )
        await conn.executemany(
            "INSERT INTO bench_rows (reader, key, value) VALUES ($1, $2, $3)"
            " ON CONFLICT (reader, key) DO UPDATE SET value = excluded.value",
            [(name, f"k{(n + i) % 50}", n) for i in range(ROWS)],
        )
        await conn.execute(
            "UPDATE bench_checkpoints SET position = $2 WHERE name = $1", name, position + 1
        )


async def _measure(folder: Path, workers: int, rate: float, seconds: float) -> dict[str, Any]:
    db = await sqldb.SQLiteDatabase.open(folder / "bench.db")
    try:
        await db.execute("CREATE TABLE bench_checkpoints (name TEXT PRIMARY KEY, position BIGINT)")
        await db.execute(
            "CREATE TABLE bench_rows (reader TEXT, key TEXT, value BIGINT,"
            " PRIMARY KEY (reader, key))"
        )
        names = [f"reader-{w}" for w in range(workers)]
        await db.executemany("INSERT INTO bench_checkpoints VALUES ($1, 0)", [(n,) for n in names])
        loop = asyncio.get_running_loop()

        async def paced(name: str, offset: float, took: list[float]) -> None:
            interval = workers / rate
            due = loop.time() + offset
            end = loop.time() + seconds
            n = 0
            while due < end:
                await asyncio.sleep(max(0.0, due - loop.time()))
                start = time.perf_counter()
                await _transaction(db, name, n)
                took.append(time.perf_counter() - start)
                n += 1
                due += interval

        async def flat_out(name: str, end: float, done: list[int]) -> None:
            n = 0
            while loop.time() < end:
                await _transaction(db, name, n)
                n += 1
            done.append(n)

        for name in names:  # warm: the statements prepared, the file's pages cached
            for n in range(20):
                await _transaction(db, name, n)
        took: list[float] = []
        cpu = _cpu()
        await asyncio.gather(*(paced(n, i / rate, took) for i, n in enumerate(names)))
        cpu = _cpu() - cpu
        took.sort()
        done: list[int] = []
        start = loop.time()
        await asyncio.gather(*(flat_out(n, start + seconds, done) for n in names))
        elapsed = loop.time() - start
        return {
            "paced_transactions": len(took),
            "cpu_us_per_transaction": round(cpu * 1e6 / len(took), 1),
            "p50_ms": round(took[len(took) // 2] * 1000, 3),
            "p99_ms": round(took[int(len(took) * 0.99)] * 1000, 3),
            "flat_out_per_second": round(sum(done) / elapsed, 1),
        }
    finally:
        await db.close()


def _run_one(args: argparse.Namespace, path: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    command = [
        sys.executable,
        "-m",
        "load.bench_sqldb",
        "--inner",
        "--workers",
        str(args.workers),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
    ]
    # Not from this folder: `-m` puts the working folder first on the path, before PYTHONPATH.
    with tempfile.TemporaryDirectory() as elsewhere:
        out = subprocess.run(
            command, env=env, cwd=elsewhere, check=True, capture_output=True, text=True
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _extract(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "sqldb", "dbdrivers"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="writers at once (read models)")
    parser.add_argument("--rate", type=float, default=200, help="paced transactions a second")
    parser.add_argument("--seconds", type=float, default=5, help="each measurement's length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="an older commit to compare with")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        with tempfile.TemporaryDirectory() as folder:
            found = asyncio.run(_measure(Path(folder), args.workers, args.rate, args.seconds))
        print(json.dumps(found | {"sqldb": str(Path(sqldb.__file__).parent)}))
        return
    here = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as base:
        sides = {"ours": [here]}
        if args.baseline:
            _extract(args.baseline, Path(base))
            sides = {"baseline": [base, here], "ours": [here]}
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for round_ in range(1, args.rounds + 1):
            for side, path in sides.items():
                found = _run_one(args, path)
                results[side].append(found)
                print(f"round {round_} {side:8}: {json.dumps(found)}", flush=True)
    print(
        f"== {args.workers} writers, paced at {args.rate:g} transactions/s, {args.seconds:g} s"
        f" each, medians over {args.rounds} rounds =="
    )
    keys = ("cpu_us_per_transaction", "p50_ms", "p99_ms", "flat_out_per_second")
    medians = {
        side: {k: statistics.median(r[k] for r in rows) for k in keys}
        for side, rows in results.items()
    }
    for side, row in medians.items():
        print(f"{side:8} " + "  ".join(f"{k} {v:g}" for k, v in row.items()))
    if "baseline" in medians:
        ratios = {k: medians["ours"][k] / medians["baseline"][k] for k in keys}
        print("ours / baseline " + "  ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
