"""The `document` projection as a property (Hypothesis): random edits of two concurrent clients
in two projects, with session events between them and snapshots now and then, folded in batches
of any size by a fold that holds a single document (so it reloads from snapshot and tail, or from
the documents it keeps encoded, all the time) or both (so it writes only the rows that changed),
leave after every batch exactly the rows of the documents rebuilt from the log alone, and for
each update the changes read from the documents rendered whole on either side of it, also when a
batch is rolled back and applied again (the runner's retry)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlFragment, XmlText

from crdt import EMPTY_UPDATE, apply, build, fold
from domain.changes import changes
from domain.document import plain
from domain.events import DOC_UPDATED, SESSION_JOINED, project_of, stream_name
from eventstore import NewEvent
from eventstore.memory import MemoryEventStore
from projections.document import TABLES, DocumentFold
from projections.document_changes import ChangesReadModel
from projections.document_rows import Tables, tables
from projections.tables import live
from sqldb import Database, open_database
from sqldb.migrate import migrate_sqlite
from tests.hypothesis_profiles import examples

PROJECTS = ("p1", "p2")
IDS = ("a", "b", "c")  # few, so that ids repeat (a schema problem) now and then
VALUES = st.one_of(st.integers(-60, 12), st.floats(-1, 1), st.text(max_size=3), st.booleans())


def edit(doc: Doc[Any], op: tuple[Any, ...]) -> None:
    tracks = doc.get("tracks", type=Array)
    kind, index, value = op
    if not len(tracks) and kind in ("set", "delete_track", "add_clip"):
        kind = "add_track"
    if kind == "add_track":
        tracks.append(Map({"id": value, "name": f"track {value}", "clips": Array()}))
    elif kind == "set" and len(tracks):
        key = ("name", "volume_db", "pan", "muted", "kind", "color", "mood")[index % 7]
        tracks[index % len(tracks)][key] = value
    elif kind == "delete_track" and len(tracks):
        del tracks[index % len(tracks)]
    elif kind == "add_clip" and len(tracks):
        clips = tracks[index % len(tracks)].get("clips")
        if isinstance(clips, Array):
            clips.append(Map({"id": str(value), "start": index, "length": 4}))
    elif kind == "lyrics":
        lyrics = doc.get("lyrics", type=Text)
        lyrics.insert(min(index, len(lyrics)), str(value) + " \n"[index % 2])
    elif kind == "comment":
        doc.get("comments", type=Array).append(Map({"id": str(value), "text": "hm", "at": index}))
    elif kind == "meta":
        doc.get("meta", type=Map)[("title", "bpm", "key")[index % 3]] = value


OPS = st.tuples(
    st.sampled_from(["add_track", "set", "delete_track", "add_clip", "lyrics", "comment", "meta"]),
    st.integers(0, 20),
    st.one_of(st.sampled_from(IDS), VALUES),
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["edit"] * 5 + ["sync", "session", "snapshot"]),
        st.sampled_from(PROJECTS),
        st.integers(0, 1),
        OPS,
    ),
    min_size=4,
    max_size=50,
)


async def write_log(store: MemoryEventStore, steps: list[tuple[Any, ...]]) -> None:
    clients: dict[str, tuple[Doc[Any], Doc[Any]]] = {p: (Doc(), Doc()) for p in PROJECTS}
    for step, project, who, op in steps:
        stream = stream_name(project)
        pair = clients[project]
        if step == "edit":
            doc = pair[who]
            before = doc.get_state()
            edit(doc, op)
            update = doc.get_update(before)
            if update != EMPTY_UPDATE:
                await store.append(stream, [NewEvent(DOC_UPDATED, update)])
        elif step == "sync":
            pair[0].apply_update(pair[1].get_update(pair[0].get_state()))
            pair[1].apply_update(pair[0].get_update(pair[1].get_state()))
        elif step == "session":
            await store.append(stream, [NewEvent(SESSION_JOINED, b"{}")])
        else:
            logged = await store.read_stream(stream)
            if logged:
                updates = [e.data for e in logged if e.type == DOC_UPDATED]
                await store.save_snapshot(stream, logged[-1].version, fold(EMPTY_UPDATE, updates))


async def rows(db: Database, table: str, project: str) -> list[tuple[Any, ...]]:
    columns = [c for c in next(t for t in TABLES if t.name == table).columns if c != "project_id"]
    names = ", ".join(f'"{c}"' for c in columns)
    found = await db.fetch(f"SELECT {names} FROM {table} WHERE project_id = $1", project)
    return sorted((tuple(r[c] for c in columns) for r in found), key=repr)


def expected(model: Tables) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "doc_tracks": sorted(model.tracks, key=repr),
        "doc_clips": sorted(model.clips, key=repr),
        "doc_comments": sorted(model.comments, key=repr),
        "doc_markers": sorted(model.markers, key=repr),
    }


async def check(
    steps: list[tuple[Any, ...]], cuts: list[int], held: tuple[int, int], path: Path
) -> None:
    store = MemoryEventStore()
    await write_log(store, steps)
    log = await store.read_all(0, 10_000)
    migrate_sqlite(path)
    db = await open_database(f"sqlite:///{path}")
    try:
        async with db.transaction() as conn:
            for table in TABLES:
                for statement in table.create("sqlite", table.name):
                    await conn.execute(statement)
        capacity, cold_bytes = held
        projection = DocumentFold(store, live(TABLES), capacity=capacity, cold_bytes=cold_bytes)
        bounds = sorted({0, len(log), *(c % (len(log) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):
            batch = [e for e in log[start:end] if e.type == DOC_UPDATED]
            if start % 2:  # the runner's retry: a batch rolled back, then applied again
                try:
                    async with db.transaction() as conn:
                        await projection.apply(conn, batch)
                        raise RolledBack
                except RolledBack:
                    pass
            async with db.transaction() as conn:
                await projection.apply(conn, batch)
            for project in {project_of(e.stream) for e in log[:end] if e.type == DOC_UPDATED}:
                updates = [
                    e.data
                    for e in log[:end]
                    if e.type == DOC_UPDATED and e.stream == stream_name(project)
                ]
                model = tables(build(EMPTY_UPDATE, updates))
                got = {table: await rows(db, table, project) for table in expected(model)}
                assert got == expected(model)
                problems = await db.fetchval(
                    "SELECT schema_problems FROM doc_projects WHERE project_id = $1", project
                )
                assert problems == model.project["schema_problems"]
        for project in PROJECTS:
            await check_changes(db, [e for e in log if e.stream == stream_name(project)], project)
    finally:
        await db.close()


class RolledBack(Exception):
    pass


async def check_changes(db: Database, stream: list[Any], project: str) -> None:
    """The changes stored for each of the stream's updates are those read from the documents
    rendered whole before and after it."""
    doc: Doc[Any] = Doc()
    expected = {}
    for event in stream:
        if event.type == DOC_UPDATED:
            before = plain(doc)
            apply(doc, event.data, "test")
            expected[event.version] = changes(before, plain(doc))
    read_model = ChangesReadModel(db)
    stored = await read_model.changes(project, 1, 10_000)
    assert {v: found for v, found in stored.items()} == {v: c for v, c in expected.items() if c}
    assert await read_model.folded(project) == max(expected, default=0)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=STEPS,
    cuts=st.lists(st.integers(0, 100), max_size=12),
    held=st.sampled_from([(1, 0), (1, 1 << 20), (len(PROJECTS), 0)]),
)
def test_the_fold_equals_the_documents_rebuilt_from_the_log(
    steps: list[tuple[Any, ...]], cuts: list[int], held: tuple[int, int]
) -> None:
    """Holding one live document and none encoded, the fold reloads from snapshot and tail and
    rewrites whole projects all the time; with the others encoded, it reloads them from there;
    holding every document, it writes only the rows that changed since its last batch."""
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(check(steps, cuts, held, Path(folder) / "model.db"))


def test_a_document_of_other_types_reads_as_empty_and_counts_its_problems() -> None:
    doc: Doc[Any] = Doc()
    doc["meta"] = Array([1])  # a root of another type: read as empty, not counted
    doc["tracks"] = Array([Map({"id": "t", "clips": "none", "solo": 1}), 3])
    model = tables(doc)
    assert model.tracks == [("t", 0, None, None, None, None, None, None, None)]
    assert model.project["schema_problems"] == 3  # clips not an array, solo not a flag, a 3
    assert model.project["title"] is None


def test_values_of_other_shared_types_are_counted_not_raised() -> None:
    doc: Doc[Any] = Doc()
    doc["tracks"] = Array(
        [
            Map({"id": "t", "kind": Map({"audio": True}), "name": XmlFragment([XmlText("x")])}),
            Map({"id": "u", "kind": Array(["midi"]), "clips": Array([Map({"id": "c", "x": 1})])}),
        ]
    )
    model = tables(doc)
    assert [t[0] for t in model.tracks] == ["t", "u"]
    assert [t[3] for t in model.tracks] == [None, None]  # kind
    assert model.clips == [("u", "c", None, None, None, None, None)]
    # each kind, the XML name (read as its text, a string: it fits) does not count, clip key x
    assert model.project["schema_problems"] == 3
