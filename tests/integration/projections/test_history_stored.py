"""History read from the document read model's record of each update (doc_updates, doc_changes)
is the history read from the log alone: for a random studio log folded in part, every page, with
every filter, is the same entry for entry, on SQLite and Postgres."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from pycrdt import Doc

from domain.events import DOC_UPDATED, SESSION_JOINED, encode
from eventstore import EventStore, NewEvent
from projections.document import TABLES, DocumentFold
from projections.document_changes import ChangesReadModel
from projections.history import Filters, Page, history
from projections.rebuild import create_missing
from projections.tables import live
from sqldb import Database
from tests.edits import KINDS, TRACK_IDS, edit

USERS = ("ana", "bob", "cem")
PATHS = ("lyrics", "tracks", "tracks/t1", "tracks/t2/name", "tracks/t3/volume_db", "meta/bpm")


async def _log(store: EventStore, stream: str, rng: random.Random, size: int) -> None:
    docs: list[Doc[Any]] = [Doc() for _ in USERS]
    for _ in range(size):
        who = rng.randrange(len(USERS))
        if rng.random() < 0.08:
            joined = encode({"user_id": USERS[who], "role": "editor"})
            await store.append(stream, [NewEvent(SESSION_JOINED, joined, {"user_id": USERS[who]})])
            continue
        doc = docs[who]
        before = doc.get_state()
        value: Any = rng.choice(("ab", "é😀", 3, -6.5, True, *TRACK_IDS))
        edit(doc, (rng.choice(KINDS), rng.random(), rng.random(), value))
        update = doc.get_update(before)
        if update == b"\x00\x00":
            continue
        meta = {"user_id": USERS[who], "connection_id": f"c{who}", "node": "n1"}
        await store.append(stream, [NewEvent(DOC_UPDATED, update, meta)])
        if rng.random() < 0.5:  # the others see it now (else later: concurrent edits)
            for other in docs:
                other.apply_update(doc.get_update(other.get_state()))


async def _fold(store: EventStore, db: Database, upto: int) -> None:
    async with db.transaction() as conn:
        await create_missing(conn, db.kind, TABLES)
    fold = DocumentFold(store, live(TABLES))
    logged = [e for e in await store.read_all(0, 100_000) if e.position <= upto]
    for start in range(0, len(logged), 37):
        async with db.transaction() as conn:
            await fold.apply(conn, logged[start : start + 37])


async def _both(
    store: EventStore, stream: str, model: ChangesReadModel, after: int, limit: int, f: Filters
) -> Page:
    """The page read with the read model, checked against the page read from the log alone."""
    stored = await history(store, stream, after=after, limit=limit, filters=f, stored=model)
    logged = await history(store, stream, after=after, limit=limit, filters=f)
    assert [e.public() for e in stored.entries] == [e.public() for e in logged.entries]
    assert stored.next_after == logged.next_after
    return stored


async def test_history_from_the_read_model_is_history_from_the_log(
    store: EventStore, db: Database
) -> None:
    rng = random.Random(11)
    stream = f"project-{uuid.uuid4()}"
    await _log(store, stream, rng, 260)
    logged = await store.read_stream(stream)
    head = logged[-1].version
    await _fold(store, db, logged[len(logged) * 2 // 3].position)  # the rest: not yet folded
    model = ChangesReadModel(db)
    assert 0 < await model.folded(stream.removeprefix("project-")) < head
    moments = [e.recorded_at for e in logged]
    cases: list[tuple[int, int, Filters]] = [(0, 50, Filters()), (0, 1000, Filters())]
    for _ in range(40):
        since = rng.choice([None, rng.choice(moments)])
        until = rng.choice([None, rng.choice(moments) + timedelta(microseconds=1)])
        filters = Filters(
            user=rng.choice([None, None, *USERS]),
            since=since,
            until=until,
            path=rng.choice([None, *PATHS]),
        )
        cases.append((rng.randrange(head), rng.choice([1, 7, 100]), filters))
    for start, limit, filters in cases:
        await _both(store, stream, model, start, limit, filters)
    # paging through by path reaches the same entries both ways, across the folded version
    for path in PATHS:
        after: int | None = 0
        while after is not None:
            after = (await _both(store, stream, model, after, 5, Filters(path=path))).next_after
