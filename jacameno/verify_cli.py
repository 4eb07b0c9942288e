"""`jacameno verify [PROJECT] [--json]`: the auditor's integrity check of the log
(jacameno.documents.verify). One line per project, then a summary (or one JSON document).
Exit code: 0 all good, 1 something disagrees, 2 a usage error (such as a project whose stream
has no events)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from jacameno.documents.verify import LogScan, ProjectReport, verify
from jacameno.settings import Settings


def add(commands: Any) -> None:
    """Add `verify [PROJECT]` to the `jacameno` command."""
    parser = commands.add_parser(
        "verify", help="check each project's log, document and snapshots (an integrity audit)"
    )
    parser.add_argument("project", nargs="?", help="only this project (its id)")
    parser.add_argument("--json", action="store_true", help="one JSON document for machines")
    parser.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jacameno.bootstrap.core import event_store

    async def go() -> int:
        async with event_store(settings) as store:
            return await audit(store, args.project, as_json=args.json, out=sys.stdout)

    return asyncio.run(go())


async def audit(store: Any, project_id: str | None, *, as_json: bool, out: TextIO) -> int:
    """Verify and report to `out`; the exit code."""

    def line(report: ProjectReport) -> None:
        if not as_json:
            out.write(describe(report) + "\n")
            out.flush()

    reports, scan = await verify(store, project_id, line)
    if project_id is not None and reports[0].events == 0 and not reports[0].snapshots:
        print(f"jacameno: no project {project_id!r}: its stream has no events", file=sys.stderr)
        return 2
    ok = all(r.ok for r in reports) and (scan is None or not scan.problems)
    if as_json:
        out.write(json.dumps(public(reports, scan, ok)) + "\n")
    else:
        out.write(summary(reports, scan) + "\n")
    return 0 if ok else 1


def describe(report: ProjectReport) -> str:
    checked = (
        f"{report.events} events, {report.updates} updates, head {report.head}, "
        f"{len(report.snapshots)} snapshot(s) checked"
    )
    if report.ok:
        return f"ok    {report.project_id}  {checked}"
    return f"FAIL  {report.project_id}  {checked}: " + "; ".join(report.problems)


def summary(reports: list[ProjectReport], scan: LogScan | None) -> str:
    failed = sum(1 for r in reports if not r.ok)
    lines = [f"log: {problem}" for problem in (scan.problems if scan else [])]
    events = sum(r.events for r in reports) if scan is None else scan.events
    verdict = "all good" if not failed and not lines else "something disagrees"
    lines.append(
        f"{len(reports)} project(s) verified, {failed} with problems, {events} events read: "
        f"{verdict}"
    )
    return "\n".join(lines)


def public(reports: list[ProjectReport], scan: LogScan | None, ok: bool) -> dict[str, Any]:
    return {
        "ok": ok,
        "projects": [r.public() for r in reports],
        "log": None if scan is None else {"events": scan.events, "problems": scan.problems},
    }
