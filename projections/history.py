"""A project's history: every event of its stream (edits, membership, sessions) in version order,
with who, when and from where, and for each document update what it changed in the studio's
words (domain.changes). What the updates changed is read from the document read model's record
of them (projections.document_changes) up to the version it has folded; beyond it (or without
it: the CLI) a page builds the document at the version before its first update there
(projections.replay) and applies the updates one by one (docs/history.md)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain import events
from domain.changes import TYPING, Change, event_summary, touches, typing_total
from domain.events import project_of
from domain.rendering import Rendering
from eventstore import EventStore, RecordedEvent
from projections.document_changes import ChangesReadModel, StoredUpdate
from projections.replay import PAGE, state_at, updates, version_at

SCAN = 5000  # events read at most for one page, so a filter that matches little stays bounded


@dataclass(frozen=True, slots=True)
class Filters:
    """Which events a page keeps: by the acting user, by time (inclusive), by the part of the
    document changed (then only document updates that touched it)."""

    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One event (or, grouped, a run of one user's keystrokes: `last_version` > `version`)."""

    version: int
    position: int
    type: str
    recorded_at: datetime
    user_id: str | None
    connection_id: str | None
    node: str | None
    changes: tuple[Change, ...] = ()
    summary: tuple[str, ...] = ()
    last_version: int = 0
    events: int = 1

    def public(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "last_version": self.last_version or self.version,
            "events": self.events,
            "position": self.position,
            "type": self.type,
            "recorded_at": self.recorded_at.isoformat(),
            "user_id": self.user_id,
            "connection_id": self.connection_id,
            "node": self.node,
            "summary": list(self.summary),
            "changes": [
                {"kind": c.kind, "path": c.path, "summary": c.summary} for c in self.changes
            ],
        }


@dataclass(slots=True)
class Page:
    """Entries in version order; `next_after` is the `after` of the next page (None: no more)."""

    entries: list[Entry] = field(default_factory=list)
    next_after: int | None = None


def _data(event: RecordedEvent) -> dict[str, Any]:
    try:
        decoded = events.decode(event.data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _entry(event: RecordedEvent, found: list[Change]) -> Entry:
    summary = (
        tuple(c.summary for c in found)
        if event.type == events.DOC_UPDATED
        else (event_summary(event.type, _data(event)),)
    )
    return Entry(
        event.version,
        event.position,
        event.type,
        event.recorded_at,
        *events.origin(event.metadata),
        tuple(found),
        summary,
    )


def _keeps(entry: Entry, filters: Filters) -> bool:
    if filters.user is not None and entry.user_id != filters.user:
        return False
    if filters.path is not None:
        return any(touches(c.path, filters.path) for c in entry.changes)
    return True


async def history(
    store: EventStore,
    stream: str,
    *,
    after: int = 0,
    limit: int = 50,
    filters: Filters = Filters(),
    scan: int = SCAN,
    stored: ChangesReadModel | None = None,
) -> Page:
    """Up to `limit` events of `stream` after version `after` that `filters` keep. With
    `stored` (the document read model's tables), what the updates it has folded changed is
    read from there, and a page filtered by path is one query up to there; what lies beyond
    is computed from the log (docs/history.md, "How a page is made")."""
    head = await store.stream_version(stream)
    start = min(after, head)
    if filters.since is not None:
        start = max(start, await version_at(store, stream, filters.since, strictly=True))
    project_id = project_of(stream)
    folded = 0 if stored is None else min(await stored.folded(project_id), head)
    page = Page()
    if stored is not None and filters.path is not None and start < folded:
        found = await stored.updates(
            project_id,
            after=start,
            upto=folded,
            limit=limit,
            path=filters.path,
            user=filters.user,
            since=filters.since,
            until=filters.until,
        )
        page.entries = [_stored_entry(update) for update in found]
        if len(found) >= limit:
            page.next_after = found[-1].version if found[-1].version < head else None
            return page
        start = folded  # the rest of the page: the updates not folded yet, from the log
    source = _Source(store, stream, head, stored, folded)
    return await _scan(source, start, limit, filters, scan, page)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a page reads: the log up to `head`, and `stored` for the updates up to `folded`."""

    store: EventStore
    stream: str
    head: int
    stored: ChangesReadModel | None
    folded: int


async def _scan(
    source: _Source, start: int, limit: int, filters: Filters, scan: int, page: Page
) -> Page:
    """The page read from the log from version `start`: the changes of the updates up to
    `folded` from `stored`, those of the later ones from the document built as of before the
    first of them (projections.replay) and kept rendered update by update."""
    store, stream, head, folded = source.store, source.stream, source.head, source.folded
    rendering: Rendering | None = None
    step = PAGE if filters.user is not None or filters.path is not None else limit
    scanned = 0
    while start < head:
        batch = await updates(store, stream, start, min(head, start + step))
        if not batch:
            break
        known: dict[int, list[Change]] = {}
        if source.stored is not None and batch[0].version <= folded:
            last = min(batch[-1].version, folded)
            known = await source.stored.changes(project_of(stream), batch[0].version, last)
        for event in batch:
            if filters.until is not None and event.recorded_at > filters.until:
                return page
            found: list[Change] = []
            if event.type == events.DOC_UPDATED and event.version <= folded:
                found = known.get(event.version, [])
            elif event.type == events.DOC_UPDATED:
                if rendering is None:
                    rendering = Rendering((await state_at(store, stream, event.version - 1)).doc)
                found = rendering.changed(event.data, "replay")
            entry = _entry(event, found)
            if _keeps(entry, filters):
                page.entries.append(entry)
            start, scanned = event.version, scanned + 1
            if len(page.entries) >= limit or scanned >= scan:
                page.next_after = start if start < head else None
                return page
    return page


def _stored_entry(update: StoredUpdate) -> Entry:
    return Entry(
        update.version,
        update.position,
        events.DOC_UPDATED,
        update.recorded_at,
        update.user_id,
        update.connection_id,
        update.node,
        update.changes,
        tuple(c.summary for c in update.changes),
    )


def typing_grouped(entries: list[Entry]) -> list[Entry]:
    """Runs of consecutive entries of one user whose changes are all lyrics typing, each as one
    entry with the characters added up; every other entry as it is."""
    out: list[Entry] = []
    for entry in entries:
        if out and _typing(entry) and _typing(out[-1]) and out[-1].user_id == entry.user_id:
            run = out[-1]
            total = tuple(typing_total((*run.changes, *entry.changes)))
            out[-1] = replace(
                run,
                changes=total,
                summary=tuple(c.summary for c in total),
                last_version=entry.version,
                events=run.events + entry.events,
            )
        else:
            out.append(entry)
    return out


def _typing(entry: Entry) -> bool:
    return (
        entry.type == events.DOC_UPDATED
        and bool(entry.changes)
        and all(c.kind in TYPING for c in entry.changes)
    )
