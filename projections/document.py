"""The document read model: the `doc_*` tables (migration 0007 made the first ones), the fold that
keeps them from the `doc.updated` events (`document_projection`, applied by the runner), and the
queries on them (`DocumentReadModel`). Analysts query these tables with SQL; the tracks endpoint
serves them.

The fold keeps each active project's pycrdt document in a bounded LRU, and the documents pushed
out of it encoded (`get_update()`, bounded in bytes). On a miss it loads the document from there,
else as of just before the batch's first event of that project (the latest snapshot at or below
it, then the stream's tail up to it); a gap in stream versions since the cached document
(other events of the stream, or events another node applied) is filled from the stream. Yjs updates
are idempotent, so a retried batch applies cleanly to a document that already holds it. Then the
rows of the projects the batch changed, and only those that differ from what the fold last wrote,
are rewritten in the runner's transaction.

How a document reads as rows, tolerantly (what does not fit the schema is counted in
`doc_projects.schema_problems`, never raised), is projections/document_rows.py."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from crdt import EMPTY_UPDATE, MalformedUpdate, apply, build
from domain.changes import Change
from domain.events import DOC_UPDATED, is_project_stream, project_of, stream_name
from domain.rendering import Rendering
from eventstore import EventStore, RecordedEvent
from projections.document_changes import TABLES as CHANGE_TABLES
from projections.document_changes import ChangeRows
from projections.document_rows import Memo, Tables, rows_of, tables
from projections.runner import Projection
from projections.tables import Names, Table, delete_where_in, insert_rows, update_rows
from sqldb import Connection, Database, Row

logger = logging.getLogger(__name__)

# -- the tables (created by the runner; migration 0007 made the first ones) --------------------

_ROW_TABLES = (
    Table(
        "doc_projects",
        {
            "project_id": "text not null",
            "title": "text",
            "bpm": "double",
            "key": "text",
            "time_signature": "text",
            "lyrics_characters": "bigint not null",
            "lyrics_words": "bigint not null",
            "lyrics_lines": "bigint not null",
            "comments": "bigint not null",  # comments in the document, resolved or not
            "schema_problems": "bigint not null",  # values left out: they do not fit the schema
            "version": "bigint not null",  # stream version of the last doc.updated applied
            "updated_at": "bigint not null",  # its recorded_at, epoch milliseconds
        },
        key=("project_id",),
    ),
    Table(
        "doc_tracks",
        {
            "project_id": "text not null",
            "id": "text not null",
            "position": "bigint not null",  # 0-based index in the document's tracks array
            "name": "text",
            "kind": "text",  # audio, midi or bus
            "color": "text",
            "volume_db": "double",
            "pan": "double",
            "muted": "smallint",
            "solo": "smallint",
        },
        key=("project_id", "id"),
    ),
    Table(
        "doc_clips",
        {
            "project_id": "text not null",
            "track_id": "text not null",
            "id": "text not null",
            "asset_id": "text",
            "start": "double",
            "length": "double",
            "offset": "double",
            "gain_db": "double",
        },
        key=("project_id", "track_id", "id"),
    ),
    Table(
        "doc_comments",
        {
            "project_id": "text not null",
            "id": "text not null",
            "position": "bigint not null",
            "author": "text",
            "text": "text",
            "at": "double",  # where in the song, seconds
            "created_at": "double",  # as the client wrote it
            "resolved": "smallint",
        },
        key=("project_id", "id"),
    ),
    Table(
        "doc_markers",
        {
            "project_id": "text not null",
            "position": "bigint not null",
            "id": "text",
            "name": "text",
            "at": "double",
        },
        key=("project_id", "position"),
    ),
)
TABLES = _ROW_TABLES + CHANGE_TABLES  # the rows of the document, then what each update changed
_PROJECTS = next(t for t in _ROW_TABLES if t.name == "doc_projects")

# -- the fold ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    doc: Doc[Any]
    version: int  # the stream version the document reflects
    # The rows this fold last wrote, and the doc_projects.version written with them: while the
    # table still holds that version, only the rows that differ are rewritten.
    written: Tables | None = None
    written_version: int = -1
    # The document's plain rendering kept update by update, for what each update changed
    # (made at the first update the fold records; None until then).
    rendering: Rendering | None = None
    # the rows of the rendering's tracks and comments, read again only where an update touched
    memo: Memo = field(default_factory=Memo)

    def record(self, event: RecordedEvent) -> list[Change]:
        """Apply the event's update; what it changed, in the studio's words."""
        if self.rendering is None:
            self.rendering = Rendering(self.doc, counted=True)
        try:
            return self.rendering.changed(event.data, "projection")
        except MalformedUpdate:
            _skipped(event)
            return []

    def rows(self) -> Tables:
        """The document's rows, from the rendering kept update by update while it holds."""
        rendering = self.rendering
        if rendering is None or rendering.stale:
            return tables(self.doc)
        return rows_of(rendering.value, self.memo)

    def catch_up(self, event: RecordedEvent) -> None:
        """Apply an update whose changes another pass of the fold recorded."""
        try:
            apply(self.doc, event.data, "projection")
        except MalformedUpdate:
            _skipped(event)
        if self.rendering is not None:
            self.rendering.stale = True


@dataclass(slots=True)
class _Cold:
    """A document pushed out of the LRU, kept encoded: a studio project of 1,000 edits takes
    28 KB so, against about 400 KiB as a live Doc, and is loaded again in one apply rather than
    from its snapshot and the log's tail update by update."""

    state: bytes
    version: int
    written: Tables | None
    written_version: int


class DocumentFold:
    """The projection's state: the active projects' documents, at most `capacity` of them live,
    and those pushed out of the LRU encoded, up to `cold_bytes` of them."""

    def __init__(
        self,
        store: EventStore,
        names: Names,
        capacity: int = 256,
        page: int = 1000,
        cold_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._store = store
        self._names = names
        self._capacity = capacity
        self._page = page
        self._docs: OrderedDict[str, _Cached] = OrderedDict()
        self._cold: OrderedDict[str, _Cold] = OrderedDict()
        self._cold_bytes = cold_bytes
        self._cold_size = 0
        self._prepared: _Prepared | None = None

    def cached(self) -> list[str]:
        """The projects whose documents are held live, least recently used first."""
        return list(self._docs)

    async def _catch_up(self, project_id: str, cached: _Cached, up_to: int) -> None:
        """Apply the stream's doc updates after the cached version up to `up_to`."""
        stream = stream_name(project_id)
        while cached.version < up_to:
            batch = await self._store.read_stream(
                stream, cached.version + 1, to_version=up_to, limit=self._page
            )
            if not batch:
                break
            for event in batch:
                if event.type == DOC_UPDATED:
                    cached.catch_up(event)
                cached.version = event.version

    async def _doc(self, project_id: str, version: int) -> _Cached:
        """The project's document as of stream version `version` (or later, from a retry)."""
        cached = self._docs.get(project_id)
        if cached is None:
            cached = self._docs[project_id] = await self._load(project_id, version)
            while len(self._docs) > self._capacity:
                self._evict()
        self._docs.move_to_end(project_id)
        await self._catch_up(project_id, cached, version)
        return cached

    async def _load(self, project_id: str, version: int) -> _Cached:
        """The document kept encoded, else the latest snapshot at or below `version`."""
        cold = self._cold.pop(project_id, None)
        if cold is not None:
            self._cold_size -= len(cold.state)
            return _Cached(build(cold.state, ()), cold.version, cold.written, cold.written_version)
        snapshot = await self._store.load_snapshot(stream_name(project_id), max_version=version)
        if snapshot is None:
            return _Cached(build(EMPTY_UPDATE, ()), 0)
        return _Cached(build(snapshot.state, ()), snapshot.version)

    def _evict(self) -> None:
        project_id, cached = self._docs.popitem(last=False)
        if self._cold_bytes <= 0:
            return
        state = cached.doc.get_update()
        cold = _Cold(state, cached.version, cached.written, cached.written_version)
        self._cold[project_id] = cold
        self._cold_size += len(state)
        while self._cold_size > self._cold_bytes:
            _, dropped = self._cold.popitem(last=False)
            self._cold_size -= len(dropped.state)

    def _forget(self, project_id: str) -> None:
        self._docs.pop(project_id, None)
        cold = self._cold.pop(project_id, None)
        if cold is not None:
            self._cold_size -= len(cold.state)

    async def prepare(self, events: list[RecordedEvent]) -> None:
        """Apply the batch's updates to the documents (loading them from the log where need
        be), and compute what each changed and the rows of the projects it changed: all of the
        batch's work but the writes, before the runner opens its transaction."""
        changed: dict[str, tuple[_Cached, RecordedEvent]] = {}  # kept if evicted meanwhile
        rows = ChangeRows([], [])
        for event in events:
            if event.type != DOC_UPDATED or not is_project_stream(event.stream):
                continue
            await _share()
            project_id = project_of(event.stream)
            cached = await self._doc(project_id, event.version - 1)
            if cached.version >= event.version:
                # A batch the runner retries: the document already holds this update, so what
                # it changed can only be seen from a document loaded again from before it.
                self._forget(project_id)
                cached = await self._doc(project_id, event.version - 1)
            rows.add(project_id, event, cached.record(event))
            cached.version = event.version
            changed[project_id] = (cached, event)
        documents: dict[str, Tables] = {}
        for project_id, (cached, _) in changed.items():
            await _share()
            documents[project_id] = cached.rows()
        self._prepared = _Prepared([e.position for e in events], changed, documents, rows)

    async def apply(self, conn: Connection, events: list[RecordedEvent]) -> None:
        """Write what `prepare` computed for these events (prepared now if it was not)."""
        prepared = self._prepared
        if prepared is None or prepared.positions[-1:] != [e.position for e in events[-1:]]:
            await self.prepare(events)
            prepared = self._prepared
        assert prepared is not None
        self._prepared = None
        if prepared.changed:
            await _write(conn, self._names, prepared.changed, prepared.documents)
            await prepared.changes.write(conn, self._names)
            self._wrote(prepared)

    def _wrote(self, prepared: _Prepared) -> None:
        """Record the rows the batch wrote, where each document is now: live, or encoded if
        `prepare` pushed it out (encoded with the rows before this batch). Trusted by the next
        batch only through `_write`'s condition: if this transaction does not commit, the retry
        loads the documents again (`prepare`), and they have written nothing."""
        for project_id, (cached, last) in prepared.changed.items():
            written = prepared.documents[project_id], last.version
            cached.written, cached.written_version = written
            if (cold := self._cold.get(project_id)) is not None:
                cold.written, cold.written_version = written


async def _share() -> None:
    """Let the rest of the server have the loop before each update's fold and each project's
    rows. The fold runs on the serving node's event loop, and whatever else is ready waits for
    it: a collaborator's edit that arrives while a live batch is folded goes out to the room
    between two of its updates, not after the batch or a slice of it. Measured at 50 clients /
    10 rooms / 5 edits/s on SQLite (load.bench_collab, on-receipt, two alternate runs each):
    fan-out p99 3.2 and 3.3 ms when handing back after every update, 5.2 and 4.8 ms every
    millisecond, 8.8 and 8.0 ms every 4 ms (as before), for about 3 % more of the server's CPU
    than every millisecond; a rebuild pays a few microseconds per update of its fold's hundreds."""
    await asyncio.sleep(0)


@dataclass(slots=True)
class _Prepared:
    """A batch's work done before its transaction: the positions of its events, the documents
    it changed (with the last event of each) and their rows, and what each update changed.
    A batch the runner applies with fewer events (another runner applied the first ones) is
    written whole: its rows are those of the same log, written again."""

    positions: list[int]
    changed: dict[str, tuple[_Cached, RecordedEvent]]
    documents: dict[str, Tables]
    changes: ChangeRows


def _skipped(event: RecordedEvent) -> None:
    """A logged update that does not apply (validation exists to prevent it) is logged and left
    out rather than stalling the read model."""
    logger.exception(
        "a logged document update does not apply; left out of the read model",
        extra={
            "action": "projection.document.skip",
            "stream": event.stream,
            "position": event.position,
        },
    )


_PROJECT_COLUMNS = (
    "project_id",
    "title",
    "bpm",
    "key",
    "time_signature",
    "lyrics_characters",
    "lyrics_words",
    "lyrics_lines",
    "comments",
    "schema_problems",
    "version",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class _Child:
    """A child table of doc_projects: its columns after project_id, of which the first `key`
    (with project_id) are its key, and where a project's rows of it are in `Tables`."""

    table: str
    columns: tuple[str, ...]
    key: int
    of: Callable[[Tables], list[tuple[Any, ...]]]

    def differences(
        self, before: Tables, after: Tables
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The keys of the rows gone from `before` to `after`, and the rows new or changed."""
        old = {row[: self.key]: row for row in self.of(before)}
        new = {row[: self.key]: row for row in self.of(after)}
        gone = [key for key in old if key not in new]
        return gone, [row for key, row in new.items() if old.get(key) != row]


_CHILDREN = (
    _Child(
        "doc_tracks",
        ("id", "position", "name", "kind", "color", "volume_db", "pan", "muted", "solo"),
        1,
        lambda t: t.tracks,
    ),
    _Child(
        "doc_clips",
        ("track_id", "id", "asset_id", "start", "length", "offset", "gain_db"),
        2,
        lambda t: t.clips,
    ),
    _Child(
        "doc_comments",
        ("id", "position", "author", "text", "at", "created_at", "resolved"),
        1,
        lambda t: t.comments,
    ),
    _Child("doc_markers", ("position", "id", "name", "at"), 1, lambda t: t.markers),
)


async def _write(
    conn: Connection,
    names: Names,
    changed: dict[str, tuple[_Cached, RecordedEvent]],
    rows: dict[str, Tables],
) -> None:
    """Rewrite the changed projects' rows, set-based, with no read (on SQLite the batch's
    statements go to the writer thread with its COMMIT, in one hop). A project whose rows this
    fold wrote last time has its doc_projects row moved on from the version written then, on
    that condition: if another writer moved it meanwhile, the batch fails (`RowCountError`) and
    the runner's retry, which loads the documents again, writes such projects whole. Per child
    table, the rows that differ from those written last time (all of a project's rows, deleted
    and written again, where this fold has written none since it loaded the document): one
    delete of the rows gone and one multi-row upsert of the rows new or changed, so moving a
    fader rewrites one row of doc_tracks, not all of them."""
    project_rows: dict[str, tuple[Any, ...]] = {
        project_id: (
            project_id,
            *(rows[project_id].project[c] for c in _PROJECT_COLUMNS[1:-2]),
            last.version,
            int(last.recorded_at.timestamp() * 1000),
        )
        for project_id, (_, last) in changed.items()
    }
    await update_rows(
        conn,
        _PROJECTS,
        names["doc_projects"],
        _PROJECT_COLUMNS[1:],
        [
            (*project_rows[project_id][1:], project_id, cached.written_version)
            for project_id, (cached, _) in changed.items()
            if cached.written is not None
        ],
        where=("project_id", "version"),
    )
    await insert_rows(
        conn,
        names["doc_projects"],
        _PROJECT_COLUMNS,
        [
            project_rows[project_id]
            for project_id, (cached, _) in changed.items()
            if cached.written is None
        ],
        upsert=("project_id",),
    )
    for child in _CHILDREN:
        whole: list[str] = []  # projects whose rows in the table are all written again
        gone: list[tuple[Any, ...]] = []
        upserts: list[tuple[Any, ...]] = []
        for project_id, (cached, _) in changed.items():
            after = rows[project_id]
            if cached.written is None:
                whole.append(project_id)
                upserts.extend((project_id, *row) for row in child.of(after))
                continue
            removed, written = child.differences(cached.written, after)
            gone.extend((project_id, *key) for key in removed)
            upserts.extend((project_id, *row) for row in written)
        table = names[child.table]
        key = ("project_id", *child.columns[: child.key])
        await delete_where_in(conn, table, "project_id", whole)
        if gone:
            where = " AND ".join(f'"{c}" = ${i + 1}' for i, c in enumerate(key))
            await conn.executemany(f"DELETE FROM {table} WHERE {where}", gone)
        await insert_rows(conn, table, ("project_id", *child.columns), upserts, upsert=key)


def document_projection(
    store: EventStore, capacity: int = 256, cold_bytes: int = 64 * 1024 * 1024
) -> Projection:
    """The `document` read model's projection; its fold reads the log itself on a cache miss."""
    return Projection(
        name="document",
        event_types=frozenset({DOC_UPDATED}),
        fold=lambda names: DocumentFold(store, names, capacity, cold_bytes=cold_bytes),
        tables=TABLES,
        version=2,  # 2: doc_updates and doc_changes
    )


# -- the queries ---------------------------------------------------------------------------


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _clip(row: Row) -> dict[str, Any]:
    return {c: row[c] for c in ("id", "asset_id", "start", "length", "offset", "gain_db")}


class DocumentReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def tracks(self, project_id: str) -> dict[str, Any]:
        """The project's tracks in document order, each with its clips, and the stream version
        the model reflects (0: no document edit folded yet)."""
        version = await self._db.fetchval(
            "SELECT version FROM doc_projects WHERE project_id = $1", project_id
        )
        tracks = await self._db.fetch(
            "SELECT id, position, name, kind, color, volume_db, pan, muted, solo FROM doc_tracks"
            " WHERE project_id = $1 ORDER BY position",
            project_id,
        )
        clips = await self._db.fetch(
            'SELECT track_id, id, asset_id, start, length, "offset", gain_db FROM doc_clips'
            " WHERE project_id = $1 ORDER BY track_id, start, id",
            project_id,
        )
        by_track: dict[str, list[dict[str, Any]]] = {}
        for clip in clips:
            by_track.setdefault(clip["track_id"], []).append(_clip(clip))
        return {
            "version": 0 if version is None else int(version),
            "tracks": [
                {
                    "id": t["id"],
                    "position": int(t["position"]),
                    "name": t["name"],
                    "kind": t["kind"],
                    "color": t["color"],
                    "volume_db": t["volume_db"],
                    "pan": t["pan"],
                    "muted": _flag(t["muted"]),
                    "solo": _flag(t["solo"]),
                    "clips": by_track.get(t["id"], []),
                }
                for t in tracks
            ],
        }
