"""How the document model writes a batch, against SQLite and Postgres: with no read, its rows
moved on from the version it last wrote on that condition; a row another writer moved meanwhile
fails the batch, and its retry writes the project whole."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from domain.events import DOC_UPDATED, stream_name
from eventstore import EventStore, NewEvent, RecordedEvent
from projections.applier import Applier
from projections.document import DocumentFold, DocumentReadModel, document_projection
from projections.projection import Target
from projections.runner import ProjectionRunner
from projections.tables import live
from sqldb import Database, RowCountError
from tests.integration.projections.support import count_hops

PROJECT = "p-doc-writes"


class Editor:
    """One client's document of the project, its edits appended to the log."""

    def __init__(self, store: EventStore, project: str = PROJECT) -> None:
        self.store = store
        self.stream = stream_name(project)
        self.doc: Doc[Any] = Doc()
        self.tracks = self.doc.get("tracks", type=Array)

    async def edit(self, change: Any) -> RecordedEvent:
        before = self.doc.get_state()
        change(self)
        update = self.doc.get_update(before)
        await self.store.append(self.stream, [NewEvent(DOC_UPDATED, update)])
        return (await self.store.read_stream(self.stream))[-1]

    async def add(self, track_id: str, name: str) -> RecordedEvent:
        return await self.edit(lambda e: e.tracks.append(Map({"id": track_id, "name": name})))

    async def rename(self, index: int, name: str) -> RecordedEvent:
        return await self.edit(lambda e: e.tracks[index].__setitem__("name", name))


async def apply(db: Database, fold: DocumentFold, events: list[RecordedEvent]) -> None:
    await fold.prepare(events)  # as the runner does, before the transaction
    async with db.transaction() as conn:
        await fold.apply(conn, events)


async def names(db: Database, project: str = PROJECT) -> tuple[int, list[str]]:
    model = await DocumentReadModel(db).tracks(project)
    return model["version"], [t["name"] for t in model["tracks"]]


async def test_a_row_moved_under_the_fold_fails_the_batch_and_its_retry_writes_it_whole(
    store: EventStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = document_projection(store)
    await ProjectionRunner(store, db, [projection]).prepare()  # creates the tables
    ours, theirs = (DocumentFold(store, live(projection.tables)) for _ in range(2))
    editor = Editor(store)
    await apply(db, ours, [await editor.add("a", "one"), await editor.add("b", "bass")])
    hops = count_hops(db, monkeypatch)
    before = hops() if hops else 0
    await apply(db, ours, [await editor.rename(0, "two")])
    if hops:  # SQLite: a batch the fold trusts is one hop
        assert hops() - before == 1
    assert await names(db) == (3, ["two", "bass"])
    # Another writer (a second runner's fold, say) moves the project on: "three", at 4.
    await apply(db, theirs, [await editor.rename(0, "three")])
    assert await names(db) == (4, ["three", "bass"])
    # Back to "two" at 5: between the rows ours last wrote (at 3) and its own at 5 no track
    # differs, so trusting what it wrote would leave "three" in the table. The row is not at
    # 3 any more: the batch fails, whole, on either backend.
    back = await editor.rename(0, "two")
    with pytest.raises(RowCountError):
        await apply(db, ours, [back])
    assert await names(db) == (4, ["three", "bass"])
    # The retry loads the document again and writes the project whole.
    await apply(db, ours, [back])
    assert await names(db) == (5, ["two", "bass"])
    # and from there it trusts what it wrote again: one hop on SQLite
    before = hops() if hops else 0
    await apply(db, ours, [await editor.rename(1, "drums")])
    if hops:
        assert hops() - before == 1
    assert await names(db) == (6, ["two", "drums"])


async def test_a_standby_that_moved_the_model_on_makes_a_runner_write_the_project_whole(
    store: EventStore, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the runner's applier: the checkpoint and the document's rows moved on by
    another runner fail the batch once; it is prepared again and written whole, once."""
    projection = document_projection(store)
    await ProjectionRunner(store, db, [projection]).prepare()
    ours, theirs = (
        (
            Applier(db, max_backoff=1.0, rate_window=10.0),
            Target.of("document", projection, live(projection.tables)),
        )
        for _ in range(2)
    )
    editor = Editor(store)
    first = [await editor.add("a", "one"), await editor.rename(0, "two")]
    await ours[0].apply_until_done(ours[1], first)
    moved = [await editor.rename(0, "three"), await editor.rename(0, "two")]
    await theirs[0].apply_until_done(theirs[1], first + moved)
    assert await names(db) == (4, ["two"])
    caplog.set_level(logging.INFO, logger="projections.applier")
    last = await editor.rename(0, "four")
    assert await ours[0].apply_until_done(ours[1], [last]) == last.position
    retried = [r for r in caplog.records if getattr(r, "action", "") == "projection.moved_under"]
    assert len(retried) == 1
    assert await names(db) == (5, ["four"])
    assert not [r for r in caplog.records if getattr(r, "action", "") == "projection.retry"]


async def test_a_document_pushed_out_during_its_batch_trusts_the_rows_that_batch_wrote(
    store: EventStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding one live document and the others encoded: a batch over two projects pushes the
    first out while it is prepared, before its rows are written. Encoded, it must still know
    them, or its next batch's condition fails (found by the fold's property test)."""
    projection = document_projection(store)
    await ProjectionRunner(store, db, [projection]).prepare()
    fold = DocumentFold(store, live(projection.tables), capacity=1, cold_bytes=1 << 20)
    first, second = Editor(store), Editor(store, "p-other")
    await apply(db, fold, [await first.add("a", "one")])
    await apply(db, fold, [await first.rename(0, "two"), await second.add("x", "other")])
    assert fold.cached() == ["p-other"]  # the first was pushed out by the second
    hops = count_hops(db, monkeypatch)
    before = hops() if hops else 0
    await apply(db, fold, [await first.rename(0, "three")])
    if hops:  # loaded from its encoding, trusted: one hop on SQLite
        assert hops() - before == 1
    assert await names(db) == (3, ["three"])
    assert await names(db, "p-other") == (1, ["other"])
