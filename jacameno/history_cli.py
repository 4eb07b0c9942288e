"""`jacameno replay PROJECT (--version N | --at TIME) [--json | --yjs FILE]`, `jacameno history
PROJECT [--user U] [--since T] [--until T] [--path P] [--json]`, `jacameno diff PROJECT FROM TO
[--json]` and `jacameno blame PROJECT [--path lyrics|tracks/ID] [--version N] [--json]`: a
project as it stood at a point, its history in words, what changed between two versions, and
who wrote what, read from the log alone (projections.replay, projections.history,
projections.diff, projections.blame; docs/history.md). Operator tools: they read any project of
the database they are given."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.events import stream_name
from eventstore import EventStore
from jacameno.settings import Settings
from projections.blame import Blame, blame, target
from projections.blame_checkpoints import Checkpoints
from projections.diff import DELETED_TEXT, INSERTED, Diff, diff
from projections.history import Entry, Filters, history
from projections.replay import VersionNotFound, moment, state_at, state_when


def _project(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a project id: {text!r}") from exc


def _version(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a version (0 or more): {text!r}")
    return int(text)


def _moment(text: str) -> datetime:
    try:
        return moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {text!r}") from exc


def _path(text: str) -> str:
    try:
        target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: {text!r}") from exc
    return text


def add(commands: Any) -> None:
    """Add `replay`, `history`, `diff` and `blame` to the `jacameno` command."""
    replay = commands.add_parser("replay", help="a project's document at a version or a moment")
    replay.add_argument("project", type=_project, help="the project id")
    point = replay.add_mutually_exclusive_group(required=True)
    point.add_argument("--version", type=_version, help="a version of the project's stream")
    point.add_argument("--at", type=_moment, help="ISO 8601: the last version at or before it")
    output = replay.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the document as JSON (default)")
    output.add_argument("--yjs", type=Path, metavar="FILE", help="write one Yjs v1 update")
    replay.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    replay.set_defaults(run=run_replay)
    past = commands.add_parser("history", help="every event of a project, in words")
    past.add_argument("project", type=_project, help="the project id")
    past.add_argument("--user", help="only this user's events")
    past.add_argument("--since", type=_moment, help="ISO 8601: events at or after it")
    past.add_argument("--until", type=_moment, help="ISO 8601: events at or before it")
    past.add_argument("--path", help="only updates that changed it: lyrics, tracks/<id>/pan")
    past.add_argument("--json", action="store_true", help="one JSON object per line")
    past.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    past.set_defaults(run=run_history)
    between = commands.add_parser("diff", help="what changed from one version to another")
    between.add_argument("project", type=_project, help="the project id")
    between.add_argument("start", type=_version, metavar="FROM", help="a version (0: empty)")
    between.add_argument("end", type=_version, metavar="TO", help="a version (may be earlier)")
    between.add_argument("--json", action="store_true", help="the diff as one JSON object")
    between.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    between.set_defaults(run=run_diff)
    who = commands.add_parser("blame", help="who wrote the lyrics, who set a track's values")
    who.add_argument("project", type=_project, help="the project id")
    who.add_argument("--path", type=_path, default="lyrics", help="lyrics or tracks/<track id>")
    who.add_argument("--version", type=_version, help="a version (default: the head)")
    who.add_argument("--json", action="store_true", help="the API's object as JSON")
    who.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    who.set_defaults(run=run_blame)


async def _with_store(settings: Settings, work: Callable[[EventStore], Awaitable[int]]) -> int:
    from jacameno.bootstrap.core import event_store

    async with event_store(settings) as store:
        code: int = await work(store)
        return code


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: EventStore) -> int:
        stream = stream_name(args.project)
        try:
            if args.at is not None:
                state = await state_when(store, stream, args.at)
            else:
                state = await state_at(store, stream, args.version)
        except VersionNotFound as exc:
            print(f"jacameno: {exc}", file=sys.stderr)
            return 1
        if args.yjs is not None:
            args.yjs.write_bytes(state.doc.get_update())
            print(f"version {state.version} written to {args.yjs}")
        else:
            print(json.dumps({"project_id": args.project, **state.public()}, indent=2))
        return 0

    return asyncio.run(_with_store(settings, work))


def line(entry: Entry) -> str:
    """One entry as a line: version, time, user, and what happened."""
    when = entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
    what = "; ".join(entry.summary) or entry.type
    return f"{entry.version:>7}  {when}  {entry.user_id or '-'}  {what}"


def run_history(settings: Settings, args: argparse.Namespace) -> int:
    filters = Filters(args.user, args.since, args.until, args.path)

    async def work(store: EventStore) -> int:
        after: int | None = 0
        while after is not None:
            page = await history(
                store, stream_name(args.project), after=after, limit=200, filters=filters
            )
            for entry in page.entries:
                print(json.dumps(entry.public()) if args.json else line(entry))
            after = page.next_after
        return 0

    return asyncio.run(_with_store(settings, work))


_MARKS = {INSERTED: "+", DELETED_TEXT: "-"}


def diff_lines(found: Diff) -> list[str]:
    """A diff for reading: one sentence per change, then the lyrics' inserted (+) and deleted (-)
    runs, each with the characters kept before it counted."""
    head = f"version {found.start.version} -> {found.end.version}"
    lines = [head] + [f"  {change.summary}" for change in found.changes]
    at = 0
    for run in found.lyrics:
        if run.op in _MARKS:
            lines.append(f"  lyrics {_MARKS[run.op]} at {at}: {json.dumps(run.text)}")
        if run.op != DELETED_TEXT:
            at += len(run.text)
    return lines


def run_diff(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: EventStore) -> int:
        try:
            found = await diff(store, stream_name(args.project), args.start, args.end)
        except VersionNotFound as exc:
            print(f"jacameno: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"project_id": args.project, **found.public()}, indent=2))
        else:
            print("\n".join(diff_lines(found)))
        return 0

    return asyncio.run(_with_store(settings, work))


def blame_lines(found: Blame, path: str) -> list[str]:
    """Blame for reading: each run of the lyrics (`version  user  "text"`), or each value of a
    track (`name  value  version  user`; none if the track is not in the document)."""
    lines = [f"version {found.version}"]
    track_id = target(path)
    if track_id is None:
        for run in found.runs:
            lines.append(f"{run.version:>7}  {run.user_id or '-'}  {json.dumps(run.text)}")
        return lines
    for key, setting in found.tracks.get(track_id, {}).items():
        version = "-" if setting.version is None else setting.version
        lines.append(f"  {key}  {json.dumps(setting.value)}  {version}  {setting.user_id or '-'}")
    return lines


def run_blame(settings: Settings, args: argparse.Namespace) -> int:
    from jacameno.bootstrap.core import database

    async def work(store: EventStore) -> int:
        # the server's checkpoints: the CLI starts from them and saves those it passes
        async with database(settings) as db:
            checkpoints = Checkpoints(db)
            try:
                found = await blame(store, stream_name(args.project), args.version, checkpoints)
            except VersionNotFound as exc:
                print(f"jacameno: {exc}", file=sys.stderr)
                return 1
        public = found.public(args.path)
        if public is None:
            print(f"jacameno: no {args.path} at version {found.version}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"project_id": args.project, **public}, indent=2))
        else:
            print("\n".join(blame_lines(found, args.path)))
        return 0

    return asyncio.run(_with_store(settings, work))
