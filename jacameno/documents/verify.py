"""The auditor's integrity check of the log (`jacameno verify`, docs/operations.md "Verify"):
each project's document rebuilt from its `doc.updated` events alone, every stored snapshot of
its stream compared with the fold of the log up to the snapshot's version, and the stream's
versions checked for gaps. It reads; it never writes or repairs.

Snapshots are reached through `load_snapshot(stream, max_version)`, from the latest one down
(each next one at most one version below the last found): so every snapshot a stream keeps is
checked, without a listing the store does not offer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

import crdt
from crdt.compare import differences
from domain import document, events
from eventstore import EventStore, Snapshot

PAGE = 1000


@dataclass(slots=True)
class ProjectReport:
    """What was checked of one project and what disagrees (`problems`; empty: all good)."""

    project_id: str
    head: int = 0
    events: int = 0
    updates: int = 0
    snapshots: list[int] = field(default_factory=list)  # the versions checked
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def public(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "ok": self.ok,
            "head": self.head,
            "events": self.events,
            "updates": self.updates,
            "snapshots": self.snapshots,
            "problems": self.problems,
        }


@dataclass(slots=True)
class LogScan:
    """The projects whose streams the log holds (in order of first event), the events read, and
    gaps in the global positions."""

    projects: list[str] = field(default_factory=list)
    events: int = 0
    problems: list[str] = field(default_factory=list)


async def scan_log(store: EventStore) -> LogScan:
    """Every project stream of the log, found by reading it all once; its positions must run
    1, 2, 3, ... without a gap."""
    scan = LogScan()
    seen: set[str] = set()
    position = 0
    while True:
        page = await store.read_all(position, PAGE)
        for event in page:
            if event.position != position + 1:
                scan.problems.append(f"log positions jump from {position} to {event.position}")
            position = event.position
            if events.is_project_stream(event.stream) and event.stream not in seen:
                seen.add(event.stream)
                scan.projects.append(events.project_of(event.stream))
        scan.events += len(page)
        if len(page) < PAGE:
            return scan


async def snapshots_of(store: EventStore, stream: str) -> list[Snapshot]:
    """Every snapshot the store keeps of `stream`, lowest version first."""
    found: list[Snapshot] = []
    snapshot = await store.load_snapshot(stream)
    while snapshot is not None:
        found.append(snapshot)
        if snapshot.version <= 0:
            break
        snapshot = await store.load_snapshot(stream, max_version=snapshot.version - 1)
    return found[::-1]


async def verify_project(store: EventStore, project_id: str) -> ProjectReport:
    """Check one project's stream (see the module's docstring)."""
    report = ProjectReport(project_id)
    stream = events.stream_name(project_id)
    report.head = await store.stream_version(stream)
    pending = await snapshots_of(store, stream)
    folded: Doc[Any] | None = Doc()
    last = 0

    def compare_before(version: int) -> None:
        while pending and pending[0].version < version:
            _compare(report, pending.pop(0), folded)

    while True:
        page = await store.read_stream(stream, last + 1, limit=PAGE)
        for event in page:
            if event.version != last + 1:
                report.problems.append(_gap(last, event.version))
            compare_before(event.version)
            last = event.version
            report.events += 1
            if event.type == events.DOC_UPDATED:
                report.updates += 1
                folded = _apply(report, folded, event.version, event.data)
        if len(page) < PAGE:
            break
    compare_before(last + 1)
    if last != report.head:
        report.problems.append(
            f"the stream's head is version {report.head}, its events end at {last}"
        )
    for snapshot in pending:
        report.problems.append(
            f"snapshot at version {snapshot.version} is beyond the last event ({last})"
        )
    return report


def _gap(last: int, version: int) -> str:
    if version <= last:
        return f"version {version} comes again after {last}"
    if version == last + 2:
        return f"version {last + 1} is missing"
    return f"versions {last + 1} to {version - 1} are missing"


def _apply(
    report: ProjectReport, doc: Doc[Any] | None, version: int, update: bytes
) -> Doc[Any] | None:
    """`doc` with `update` applied; None once the document cannot be rebuilt any further."""
    if doc is None:
        return None
    try:
        crdt.check_update(update, logged=True)
        crdt.apply(doc, update, "verify")
    except crdt.DocumentDamaged as exc:
        report.problems.append(
            f"version {version}: the update breaks the document ({exc}); not rebuilt beyond it"
        )
        return None
    except crdt.MalformedUpdate as exc:
        report.problems.append(f"version {version}: not a valid Yjs update ({exc})")
    return doc


def _compare(report: ProjectReport, snapshot: Snapshot, folded: Doc[Any] | None) -> None:
    report.snapshots.append(snapshot.version)
    if folded is None:
        return
    at = f"snapshot at version {snapshot.version}"
    try:
        crdt.check_update(snapshot.state, logged=True)
        stored = crdt.build(snapshot.state, [])
    except crdt.MalformedUpdate as exc:
        report.problems.append(f"{at}: not a valid Yjs document ({exc})")
        return
    found = differences(stored, folded)
    if found:
        roots = _roots_differing(stored, folded)
        where = f"; content differs in {', '.join(roots)}" if roots else ""
        report.problems.append(f"{at} disagrees with the log: {'; '.join(found)}{where}")


def _roots_differing(a: Doc[Any], b: Doc[Any]) -> list[str]:
    mine: dict[str, Any] = dict(document.read(a))
    theirs: dict[str, Any] = dict(document.read(b))
    return [root for root in document.ROOTS if mine[root] != theirs[root]]


async def verify(
    store: EventStore,
    project_id: str | None = None,
    each: Callable[[ProjectReport], None] | None = None,
) -> tuple[list[ProjectReport], LogScan | None]:
    """Verify one project, or (None) every project of the log, after a scan of the whole log;
    `each` is told of each report as it is made."""
    scan = None
    if project_id is None:
        scan = await scan_log(store)
        ids = scan.projects
    else:
        ids = [project_id]
    reports = []
    for pid in ids:
        report = await verify_project(store, pid)
        if each is not None:
            each(report)
        reports.append(report)
    return reports, scan
