"""`jacameno projections run|status|retry|rebuild`: the projection runner from a shell. `run`
folds the log into every read model in a process of its own until SIGTERM or Ctrl-C, for serving
nodes with `JACAMENO_PROJECTIONS=standby` (jacameno.bootstrap.projecting). The others build the
core without following the log (the serving nodes, or `run`, do that): `status` reads the
checkpoints, `retry NAME` applies the failures a `skip` projection recorded, `rebuild NAME`
rebuilds a read model from position 0 beside the live one and swaps it in while the serving
nodes go on (projections/rebuild.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jacameno import loops
from jacameno.settings import Settings
from projections.lag import ProjectionStatus

if TYPE_CHECKING:
    from projections.runner import ProjectionRunner

logger = logging.getLogger(__name__)

COLUMNS = ("projection", "state", "position", "head", "behind", "seconds", "per_s", "failures")


def add(commands: Any) -> None:
    """Add `projections run|status|retry NAME|rebuild NAME` to the `jacameno` command."""
    parser = commands.add_parser("projections", help="the read models' progress and failures")
    parser.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    actions = parser.add_subparsers(dest="action", required=True)
    follow = actions.add_parser(
        "run", help="fold the log into the read models until stopped (beside standby servers)"
    )
    # Also after `run`; SUPPRESS keeps a value given before it.
    follow.add_argument(
        "--database-url", default=argparse.SUPPRESS, help="overrides JACAMENO_DATABASE_URL"
    )
    actions.add_parser("status", help="each projection's position, lag, failures and state")
    retry = actions.add_parser("retry", help="apply a projection's recorded failures again")
    retry.add_argument("name", help="the projection")
    rebuild = actions.add_parser(
        "rebuild", help="rebuild a read model from the log beside the live one, then swap"
    )
    rebuild.add_argument("name", help="the projection")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "run":
        from jacameno.bootstrap.projecting import CannotProject

        try:  # projection_node checks the settings before it opens anything
            loops.run(_run(settings))
        except CannotProject as exc:
            print(f"jacameno: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.action == "status":
        print(table(asyncio.run(_status(settings))))
        return 0
    if args.action == "rebuild":
        return loops.run(_rebuild(settings, args.name))
    return asyncio.run(_retry(settings, args.name))


def table(statuses: list[ProjectionStatus]) -> str:
    rows = [COLUMNS] + [
        (
            s.name,
            s.state,
            str(s.position),
            str(s.head),
            str(s.lag_positions),
            f"{s.seconds_behind:.1f}",
            "-" if s.events_per_second is None else f"{s.events_per_second:.1f}",
            str(s.failures),
        )
        for s in statuses
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines += [
        f"{s.name}: failing since {s.failing_since:%Y-%m-%d %H:%M:%S} UTC: {s.last_error}"
        for s in statuses
        if s.failing_since is not None
    ]
    return "\n".join(line.rstrip() for line in lines)


async def _run(settings: Settings) -> None:
    """Run every projection until SIGTERM or SIGINT, then stop them (each batch under way
    is either committed or rolled back: its checkpoint says which)."""
    from jacameno.bootstrap.projecting import projection_node

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with projection_node(settings) as base:
        names = [s.name for s in await base.runner.status()]
        logger.info(
            "projections running", extra={"action": "projections.started", "projections": names}
        )
        await stopping.wait()
        logger.info("stopping the projections", extra={"action": "projections.stopping"})
    logger.info("projections stopped", extra={"action": "projections.stopped"})


async def _status(settings: Settings) -> list[ProjectionStatus]:
    from jacameno.bootstrap.core import core

    async with core(settings, follow=False) as base:
        return await base.runner.status(rebuilds=True)


async def _named(
    settings: Settings, name: str, act: Callable[[ProjectionRunner], Awaitable[int]]
) -> int:
    """`act` on a runner that does not follow the log; 2 if there is no projection `name`."""
    from jacameno.bootstrap.core import core

    async with core(settings, follow=False) as base:
        try:
            return await act(base.runner)
        except KeyError:
            print(f"jacameno: no projection named {name!r}", file=sys.stderr)
            return 2


async def _retry(settings: Settings, name: str) -> int:
    async def retry(runner: ProjectionRunner) -> int:
        result = await runner.retry_failures(name)
        print(f"{name}: {result.applied} applied, {result.failing} still failing")
        return 0 if result.failing == 0 else 1

    return await _named(settings, name, retry)


async def _rebuild(settings: Settings, name: str) -> int:
    from projections.runner import RebuildRunning

    async def rebuild(runner: ProjectionRunner) -> int:
        try:
            position = await runner.rebuild(name)
        except RebuildRunning:
            print(f"jacameno: a rebuild of {name!r} is already running", file=sys.stderr)
            return 1
        print(f"{name}: rebuilt up to position {position} and swapped in")
        return 0

    return await _named(settings, name, rebuild)
