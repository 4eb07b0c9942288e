"""`jacameno worker [--concurrency N] [--kinds analysis,mastering]`: run AI jobs
(jacameno.ai.worker, docs/jobs.md) until SIGTERM or Ctrl-C, then drain. On SQLite one worker per
database: a second one exits at once (a lock file beside the database says so)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domain.events.jobs import KINDS
from jacameno import loops
from jacameno.settings import Settings


def add(commands: Any) -> None:
    parser = commands.add_parser("worker", help="run AI jobs (analysis, mastering) from the queue")
    parser.add_argument("--concurrency", type=int, help="jobs at once (JACAMENO_AI_CONCURRENCY)")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="the kinds of job to take (%(default)s)"
    )
    parser.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    parser.set_defaults(run=run)


class AlreadyRunning(Exception):
    """Another worker holds this SQLite database."""


@contextlib.contextmanager
def sqlite_turn(database: Path) -> Iterator[None]:
    """Hold the one worker's turn on a SQLite database for the block; AlreadyRunning if another
    process has it (the lock goes with the process, however it ends)."""
    path = database.with_name(database.name + ".worker.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AlreadyRunning(f"another worker runs on {database}") from exc
        yield


def run(settings: Settings, args: argparse.Namespace) -> int:
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        print(f"jacameno: --kinds: one or more of {', '.join(KINDS)}", file=sys.stderr)
        return 2
    config = settings.ai
    if args.concurrency is not None:
        if args.concurrency < 1:
            print("jacameno: --concurrency must be at least 1", file=sys.stderr)
            return 2
        config = dataclasses.replace(config, concurrency=args.concurrency)
    settings = dataclasses.replace(settings, ai=config)
    try:
        with contextlib.ExitStack() as stack:
            if settings.database_kind == "sqlite":
                stack.enter_context(sqlite_turn(settings.sqlite_path))
            loops.run(serve(settings, kinds))
    except AlreadyRunning as exc:
        print(f"jacameno: {exc}", file=sys.stderr)
        return 2
    return 0


async def serve(settings: Settings, kinds: tuple[str, ...]) -> None:
    from jacameno.ai.worker import Worker
    from jacameno.assets.files import AssetFiles
    from jacameno.bootstrap.core import assets, core
    from jacameno.jobs.queue import JobQueue
    from projections.projects import ProjectsReadModel

    config = settings.ai
    # The server runs the read models; a worker only reads the jobs table and writes the log.
    async with core(settings, follow=False) as base:
        files = AssetFiles(assets(base, ProjectsReadModel(base.db)))
        queue = JobQueue(base.db, lease=config.lease, max_attempts=config.max_attempts)
        worker = Worker(base.store, queue, files, config, kinds=kinds)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()
