"""Time travel's figures (issue 11; docs/benchmarks.md, "Replay"): one project with a long log
of real studio updates (`load/studio_log.py`), on SQLite and Postgres, and how long it takes to
answer the document at a random version (`projections/replay.state_at`), a history page of 100
with its summaries (`projections/history.history`), a diff across 10,000 versions
(`projections/diff.diff`), blame of the lyrics through the server's `projections/blame.Blames`
with its checkpoints in the database: the first (a replay from version 0 that saves the
checkpoints, one sample), then at random versions, each by a fresh `Blames` as another node or a
restarted server would answer (from the nearest checkpoint), and `jacameno verify`'s check of
the project (events/s). The raw `read_stream` of the whole stream, in pages of 1,000, is the
baseline measured in the same run.

    python -m load.bench_replay                          # 100,000 updates, both databases
    python -m load.bench_replay --updates 1000000 --engine yjs --database postgres
    python -m load.bench_replay --updates 5000 --samples 5   # a smoke run

Restore is measured last (it appends): through an in-process room, without sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from domain.events import stream_name
from eventstore import EventStore
from jacameno.collab.errors import MessageTooLarge, RoomUnavailable
from jacameno.collab.gatekeeper import Gatekeeper
from jacameno.collab.rooms import Rooms
from jacameno.documents.service import Documents
from jacameno.documents.verify import verify_project
from jacameno.settings.collab import CollabConfig
from load import studio_log
from load.bench_projections import DEFAULT_DSN, Plan, fresh
from load.report import Figure, Target, table
from load.stats import Measurement
from projections import document
from projections.blame import Blames
from projections.blame_checkpoints import EVERY, Checkpoints
from projections.diff import diff
from projections.document import DocumentReadModel
from projections.document_changes import ChangesReadModel
from projections.history import Filters, history
from projections.rebuild import create_missing
from projections.replay import state_at
from projections.runner import BATCH_SIZE
from projections.tables import live
from sqldb import Database

TARGETS = {"state": Target(0, max_p99_ms=100), "history": Target(0, max_p99_ms=50)}  # at 100,000
DIFF_SPAN = 10_000
PAGE = 1000
RESTORE_SAMPLES = 10  # each appends to the log the later figures would read
ROOM_LOAD_LIMIT = 1800.0  # seconds the restores wait for the project's room to load


def _say(line: str) -> None:
    print(f"[replay {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Options:
    updates: int
    samples: int
    seed: int
    plan: Plan
    skip: frozenset[str] = frozenset()
    engine: str = "pycrdt"
    blame_every: int = EVERY


async def timed(calls: list[Any]) -> Measurement:
    """Await each of `calls` (factories of awaitables) in turn; their latencies."""
    latencies = []
    started = time.perf_counter()
    for call in calls:
        before = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - before)
    return Measurement(len(calls), time.perf_counter() - started, latencies)


async def read_stream_whole(store: EventStore, stream: str) -> Measurement:
    version, started = 0, time.perf_counter()
    while page := await store.read_stream(stream, version + 1, limit=PAGE):
        version = page[-1].version
    return Measurement(version, time.perf_counter() - started)


async def first_blame(store: EventStore, db: Database, stream: str, every: int) -> Measurement:
    """The project's first blame, at the head, as the server makes it (`Blames` over the
    database's checkpoints, none yet): a replay from version 0 that saves the checkpoints."""
    await db.execute("DELETE FROM blame_checkpoints WHERE stream = $1", stream)
    return await timed([lambda: Blames(store, Checkpoints(db, every)).blame(stream)])


async def later_blames(
    store: EventStore, db: Database, stream: str, versions: list[int], every: int
) -> Measurement:
    """Blame at each of `versions`, each by a fresh `Blames` (nothing kept in memory: another
    node, or the server after a restart), from the checkpoints the first blame saved."""
    stored = await Checkpoints(db, every).listed(stream)
    sizes = [size for _, size in stored]
    _say(
        f"{len(stored)} blame checkpoints stored at {[v for v, _ in stored]},"
        f" {sum(sizes) / 1e6:.1f} MB, the newest {max(sizes, default=0) / 1e6:.2f} MB"
    )
    return await timed(
        [lambda v=v: Blames(store, Checkpoints(db, every)).blame(stream, v) for v in versions]
    )


async def fold_changes(store: EventStore, db: Database) -> Measurement:
    """The document read model folded over the whole log, as the runner would (its tables,
    doc_updates and doc_changes among them): what history pages read."""
    async with db.transaction() as conn:
        await create_missing(conn, db.kind, document.TABLES)
    fold = document.DocumentFold(store, live(document.TABLES))
    position, count, started = 0, 0, time.perf_counter()
    while batch := await store.read_all(position, BATCH_SIZE):
        await fold.prepare(batch)  # as the runner does: before the transaction
        async with db.transaction() as conn:
            await fold.apply(conn, batch)
        position, count = batch[-1].position, count + len(batch)
    return Measurement(count, time.perf_counter() - started)


async def restores(
    store: EventStore, project_id: str, versions: list[int], samples: int
) -> Measurement:
    """`samples` restores of the whole document to versions among `versions`, each through an
    in-process room (Rooms.edit: the room loaded once, then checked, applied and appended as a
    collaborator's edit would be; no socket, no bus)."""
    rooms = Rooms(store, cast(Gatekeeper, None), CollabConfig())
    documents = Documents(store, rooms)
    try:
        loading = time.perf_counter()
        while True:  # a long project loads for longer than a joiner waits; the load goes on
            try:
                await rooms.open(project_id)
                break
            except RoomUnavailable:
                if time.perf_counter() - loading > ROOM_LOAD_LIMIT:
                    raise
        _say(f"the room loaded in {time.perf_counter() - loading:.1f} s")
        refused: list[int] = []

        async def restore(version: int) -> None:
            try:
                await documents.restore("bench", project_id, version)
            except MessageTooLarge as exc:  # answered 413: timed all the same
                refused.append(version)
                _say(f"the restore to version {version} was refused: {exc}")

        calls = [lambda v=v: restore(v) for v in versions[: max(1, min(samples, RESTORE_SAMPLES))]]
        measured = await timed(calls)
        _say(f"restores: {len(calls)}, refused as too large (413): {len(refused)}")
        return measured
    finally:
        await rooms.close()


async def _figure(
    key: str,
    label: str,
    unit: str,
    measured: Awaitable[Measurement],
    target: Target | None = None,
    ceiling: str | None = None,
) -> Figure:
    return Figure(key, label, unit, await measured, target, ceiling=ceiling)


async def verify(store: EventStore, project_id: str, head: int) -> Measurement:
    """`jacameno verify`'s check of the project, as events/s; SystemExit if it disagrees."""
    started = time.perf_counter()
    report = await verify_project(store, project_id)
    if report.problems:
        raise SystemExit(f"verify disagreed on a clean log: {report.problems}")
    return Measurement(head, time.perf_counter() - started)


async def measure(kind: str, options: Options, log: studio_log.StudioLog) -> str:
    rng = random.Random(options.seed)
    async with fresh(kind, options.plan) as (store, db):
        await studio_log.write(store, log)
        stream = stream_name(log.projects[0])
        head = await store.stream_version(stream)
        versions = [rng.randint(1, head) for _ in range(options.samples)]
        span = min(DIFF_SPAN, head - 1)
        starts = [rng.randint(0, head - span) for _ in range(max(3, options.samples // 10))]
        baseline = await read_stream_whole(store, stream)
        folded = None if "fold" in options.skip else await fold_changes(store, db)
        stored = None if folded is None else ChangesReadModel(db)
        tracks = await DocumentReadModel(db).tracks(log.projects[0])
        track = f"tracks/{tracks['tracks'][0]['id']}" if tracks["tracks"] else "tracks"
        project = log.projects[0]

        def pages(filters: Filters, model: ChangesReadModel | None) -> list[Any]:
            return [
                lambda v=v: history(
                    store, stream, after=v - 1, limit=100, filters=filters, stored=model
                )
                for v in versions
            ]

        made: dict[str, Callable[[], Awaitable[Figure]]] = {
            "state": lambda: _figure(
                "state",
                f"state at a random version (of {head:,})",
                "answers/s",
                timed([lambda v=v: state_at(store, stream, v) for v in versions]),
                TARGETS["state"],
            ),
            "history": lambda: _figure(
                "history",
                "history page of 100, with summaries",
                "pages/s",
                timed(pages(Filters(), stored)),
                TARGETS["history"],
            ),
            "history-path": lambda: _figure(
                "history-path",
                f"history page of 100 of path={track}",
                "pages/s",
                timed(pages(Filters(path=track), stored)),
            ),
            "history-log": lambda: _figure(
                "history-log",
                "history page of 100, log alone (CLI)",
                "pages/s",
                timed(pages(Filters(), None)),
            ),
            "diff": lambda: _figure(
                "diff",
                f"diff across {span:,} versions",
                "diffs/s",
                timed([lambda s=s: diff(store, stream, s, s + span) for s in starts]),
            ),
            "blame": lambda: _figure(
                "blame",
                "blame, first (replay from version 0)",
                "answers/s",
                first_blame(store, db, stream, options.blame_every),
            ),
            "blame-random": lambda: _figure(
                "blame-random",
                "blame at a random version (from checkpoints)",
                "answers/s",
                later_blames(store, db, stream, versions, options.blame_every),
            ),
            "verify": lambda: _figure(
                "verify",
                "verify the project",
                "events/s",
                verify(store, project, head),
                None,
                "read",
            ),
            "restore": lambda: _figure(  # last: it appends
                "restore",
                "restore the whole document to a random version",
                "restores/s",
                restores(store, project, versions, options.samples),
            ),
        }
        figures = []
        if "blame" in options.skip:  # without the first, the later ones would replay from 0
            made.pop("blame-random")
        for key, make in made.items():
            if key not in options.skip:
                figures.append(await make())
                _say(f"{kind}: {figures[-1].label}: {figures[-1].measurement.to_json()}")
        if folded is not None:
            label = "document read model folded, with changes"
            figures.insert(0, Figure("fold", label, "events/s", folded, None, "read"))
        ceiling = Figure("read", "baseline: read_stream, pages of 1,000", "events/s", baseline)
        return table(kind, [ceiling], figures)


async def run(options: Options) -> None:
    sizes = studio_log.Sizes(
        updates=options.updates, projects=1, seed=options.seed, active=4, engine=options.engine
    )
    started = time.perf_counter()
    log = await asyncio.to_thread(studio_log.cached, sizes, options.plan.cache, _say)
    print(
        f"one project, {options.updates:,} updates made by {options.engine}"
        f" (generated or read from the cache in {time.perf_counter() - started:.0f} s);"
        f" {options.samples} samples per figure"
    )
    for kind in options.plan.databases:
        print(await measure(kind, options, log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bench_replay", description=__doc__)
    parser.add_argument("--updates", type=int, default=100_000, help="(%(default)s)")
    parser.add_argument("--samples", type=int, default=30, help="per figure (%(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="both", help="(both)"
    )
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="admin DSN of the Postgres server")
    parser.add_argument(
        "--skip",
        default="",
        help="figures left out, comma-separated (fold, state, history, history-path,"
        " history-log, diff, blame, blame-random, verify, restore): the first blame replays"
        " the whole log (and blame-random, which needs its checkpoints, goes with it);"
        " without the fold, history pages read the log alone",
    )
    parser.add_argument(
        "--blame-every",
        type=int,
        default=EVERY,
        help="versions between blame checkpoints (%(default)s, the server's)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="where generated logs are kept")
    parser.add_argument(
        "--engine",
        choices=("pycrdt", "yjs"),
        default="pycrdt",
        help="what makes the edits (load/studio_log.py): yjs (Node, load/js) makes a million"
        " in minutes, pycrdt in hours",
    )
    args = parser.parse_args(argv)
    if args.updates < 2 or args.samples < 1 or args.blame_every < 1:
        parser.error("--updates must be at least 2, --samples and --blame-every at least 1")
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    plan = Plan(
        sizes=studio_log.Sizes(updates=args.updates, projects=1, seed=args.seed),
        batch_size=BATCH_SIZE,
        append_window=1000,
        databases=databases,
        dsn=args.dsn,
        keep_database=False,
        cache=args.cache,
    )
    skip = frozenset(filter(None, args.skip.split(",")))
    options = Options(
        args.updates, args.samples, args.seed, plan, skip, args.engine, args.blame_every
    )
    asyncio.run(run(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
