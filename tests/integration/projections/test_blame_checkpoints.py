"""Blame checkpoints, on SQLite and Postgres: a blame that starts from a stored checkpoint
answers what a replay from version 0 answers, at every version; a checkpoint written by one
process is used by another; one that is damaged, of an unknown format or of another project is
passed over and the answer stays right; a database without them still answers; a stream keeps
a bounded number of them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from domain.events import DOC_UPDATED
from eventstore import EventStore, Limits, NewEvent, RecordedEvent
from harness.databases import open_store
from projections.blame import Blames, Preparing, blame
from projections.blame_checkpoints import (
    FORMAT,
    Author,
    Checkpoint,
    CheckpointError,
    Checkpoints,
    decode,
    encode,
)
from sqldb import Database, open_database
from tests.hypothesis_profiles import examples
from tests.integration.projections.studio import STEP, Studio


class Reads:
    """The store, with the first version of every stream read recorded: where a replay
    started."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.starts: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        self.starts.append(from_version)
        return await self._store.read_stream(stream, from_version, to_version, limit)

    def as_store(self) -> EventStore:
        return cast(EventStore, self)


class Gate(Reads):
    """The store, whose stream reads wait for `opened` once `shut` is set."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.shut, self.opened = asyncio.Event(), asyncio.Event()

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        if self.shut.is_set():
            await asyncio.wait_for(self.opened.wait(), 30)
        return await super().read_stream(stream, from_version, to_version, limit)


async def _typed(store: EventStore, stream: str, words: list[str]) -> Doc[Any]:
    """`words` typed one per update, by ana and bob in turn, with a track whose volume each
    update sets: a stream of len(words) + 1 versions."""
    doc: Doc[Any] = Doc()
    lyrics, tracks = doc.get("lyrics", type=Text), doc.get("tracks", type=Array)
    before = doc.get_state()
    tracks.append(Map({"id": "bass", "name": "Bass", "volume_db": 0.0}))
    await store.append(stream, [NewEvent(DOC_UPDATED, doc.get_update(before), {"user_id": "cy"})])
    for n, word in enumerate(words):
        before = doc.get_state()
        lyrics.insert(len(str(lyrics).encode()) if n % 3 else 0, word)
        tracks[0]["volume_db"] = -float(n)
        user = ("ana", "bob")[n % 2]
        await store.append(
            stream, [NewEvent(DOC_UPDATED, doc.get_update(before), {"user_id": user})]
        )
    return doc


async def _versions(db: Database, stream: str) -> list[int]:
    rows = await db.fetch(
        "SELECT version FROM blame_checkpoints WHERE stream = $1 ORDER BY version", stream
    )
    return [int(row[0]) for row in rows]


@settings(
    max_examples=examples(25),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=30), every=st.integers(1, 4), data=st.data())
def test_blame_from_checkpoints_is_blame_from_version_0_at_every_version(
    database_url: str, steps: list[tuple[int, str, int]], every: int, data: st.DataObject
) -> None:
    async def check() -> None:
        store, db = await open_store(database_url), await open_database(database_url)
        try:
            studio = Studio(store)
            for step in steps:
                await studio.step(*step)
            head = len(studio.lyrics) - 1
            checkpoints = Checkpoints(db, every=every)
            # the first blame, at a version Hypothesis picks, saves the points it passes
            first = data.draw(st.integers(0, head), label="first blame")
            assert await blame(store, studio.stream, first, checkpoints) == await blame(
                store, studio.stream, first
            )
            assert await _versions(db, studio.stream) == checkpoints.points(0, first)
            # then, in any order, from them (a fresh Blames: another node, or after a restart)
            order = data.draw(st.permutations(range(head + 1)), label="versions")
            blames = Blames(store, checkpoints, capacity=1)
            for version in order:
                fresh = await blame(store, studio.stream, version)
                assert await blames.blame(studio.stream, version) == fresh
                assert await blame(store, studio.stream, version, checkpoints) == fresh
                assert "".join(run.text for run in fresh.runs) == studio.lyrics[version]
            assert await _versions(db, studio.stream) == checkpoints.points(0, head)
        finally:
            await db.close()
            await store.close()

    asyncio.run(check())


async def test_a_checkpoint_saved_by_one_process_is_where_another_starts(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, [f"w{n} " for n in range(23)])  # versions 1..24
    first = await Blames(store, Checkpoints(db, every=10)).blame(stream)
    assert await _versions(db, stream) == [10, 20]
    reads = Reads(store)
    other = Blames(reads.as_store(), Checkpoints(db, every=10))  # a restart, another node
    assert await other.blame(stream) == first == await blame(store, stream)
    assert reads.starts == [21]  # from the checkpoint at 20
    reads.starts.clear()
    assert await other.blame(stream, 15) == await blame(store, stream, 15)
    assert reads.starts == [11]  # an earlier version: from the checkpoint at 10
    reads.starts.clear()
    assert await other.blame(stream, 7) == await blame(store, stream, 7)
    assert reads.starts == [1]  # below the first point: from version 0
    reads.starts.clear()
    assert await other.blame(stream) == first
    assert reads.starts == []  # the replay kept in memory is at the head already
    # the CLI's way (no Blames) starts from them too
    reads.starts.clear()
    assert await blame(reads.as_store(), stream, 23, Checkpoints(db, every=10)) == await blame(
        store, stream, 23
    )
    assert reads.starts == [21]


async def _corrupt(db: Database, stream: str, version: int, sql: str, *args: Any) -> None:
    await db.execute(
        f"UPDATE blame_checkpoints SET {sql} WHERE stream = $1 AND version = $2",
        stream,
        version,
        *args,
    )


async def test_a_damaged_or_unknown_checkpoint_is_passed_over_for_an_earlier_one(
    store: EventStore, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, [f"w{n} " for n in range(34)])  # versions 1..35
    checkpoints = Checkpoints(db, every=10)
    await blame(store, stream, None, checkpoints)
    assert await _versions(db, stream) == [10, 20, 30]
    row = await db.fetchrow(
        "SELECT data FROM blame_checkpoints WHERE stream = $1 AND version = 20", stream
    )
    assert row is not None
    good = bytes(row[0])
    await _corrupt(db, stream, 30, "format = $3", FORMAT + 1)  # a newer node's
    flipped = good[:40] + bytes([good[40] ^ 0xFF]) + good[41:]
    await _corrupt(db, stream, 20, "data = $3", flipped)
    reads = Reads(store)
    with caplog.at_level(logging.INFO, logger="projections"):
        found = await blame(reads.as_store(), stream, 33, checkpoints)
    assert found == await blame(store, stream, 33)
    # past 30 (format) and 20 (damaged), from 10, stopping at 20 to save it again
    assert reads.starts == [11, 21]
    assert any("passed over" in r.getMessage() for r in caplog.records)
    # the damaged one is made again by the replay that passed its point; the other format's
    # is left to the node that wrote it
    assert await _versions(db, stream) == [10, 20, 30]
    assert await checkpoints.read(stream, 20) == good
    # flipped, cut short, or not a checkpoint at all: from version 0, still right
    await _corrupt(db, stream, 10, "data = $3", flipped)
    await _corrupt(db, stream, 20, "data = $3", good[: len(good) // 2])
    await _corrupt(db, stream, 30, "format = $3, data = $4", FORMAT, b"not a checkpoint")
    reads.starts.clear()
    assert await blame(reads.as_store(), stream, 35, checkpoints) == await blame(store, stream)
    assert reads.starts[0] == 1
    reads.starts.clear()
    assert await blame(reads.as_store(), stream, 35, checkpoints) == await blame(store, stream)
    assert reads.starts == [31]


async def test_a_checkpoint_whose_pieces_do_not_spell_its_lyrics_is_refused(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, ["la ", "di ", "da "])
    checkpoints = Checkpoints(db, every=2)
    await blame(store, stream, 4, checkpoints)
    stored = await checkpoints.read(stream, 4)
    assert stored is not None
    true = decode(stored, stream)
    assert len(true.pieces) == 3
    # well-formed and compressed, but crediting the lyrics' first word's bytes to nobody
    data, _, _, version = true.pieces[0]
    lie = Checkpoint(stream, true.at, true.state, [(data[:1], 1, None, version)], true.setters)
    await _corrupt(db, stream, 4, "data = $3", encode(lie))
    assert await blame(store, stream, 4, checkpoints) == await blame(store, stream, 4)


async def test_checkpoints_of_one_project_never_answer_for_another(
    store: EventStore, db: Database
) -> None:
    ours, theirs = f"project-{uuid.uuid4()}", f"project-{uuid.uuid4()}"
    await _typed(store, theirs, [f"secret{n} " for n in range(9)])
    await _typed(store, ours, [f"w{n} " for n in range(9)])
    checkpoints = Checkpoints(db, every=5)
    await blame(store, theirs, None, checkpoints)
    assert await _versions(db, theirs) == [5, 10]
    assert await _versions(db, ours) == []
    reads = Reads(store)
    found = await Blames(reads.as_store(), checkpoints).blame(ours, 7)
    assert reads.starts == [1, 6]  # theirs are not ours: from 0 (saving ours at 5)
    assert found == await blame(store, ours, 7)
    # their checkpoint copied under our key: its header names their stream, it is refused
    await db.execute(
        "INSERT INTO blame_checkpoints (stream, version, format, size, data, saved_at)"
        " SELECT $1, version, format, size, data, saved_at FROM blame_checkpoints"
        " WHERE stream = $2 AND version = 10",
        ours,
        theirs,
    )
    reads.starts.clear()
    found = await blame(reads.as_store(), ours, None, checkpoints)
    assert reads.starts[0] == 6  # from our own checkpoint at 5, saved by the blame above
    assert found == await blame(store, ours)
    assert "secret" not in "".join(run.text for run in found.runs)
    # refused, it was deleted, and ours made at 10 instead
    assert decode(await _stored(checkpoints, ours, 10), ours).at.version == 10
    with pytest.raises(CheckpointError):
        decode(await _stored(checkpoints, theirs, 10), ours)


async def _stored(checkpoints: Checkpoints, stream: str, version: int) -> bytes:
    stored = await checkpoints.read(stream, version)
    assert stored is not None
    return stored


async def test_a_stream_keeps_a_bounded_number_of_checkpoints_thinned_like_snapshots(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, [f"{n} " for n in range(63)])  # versions 1..64
    keep = Limits(snapshots_per_stream=2, snapshot_spacing=2, spaced_snapshots=4)
    checkpoints = Checkpoints(db, every=2, keep=keep)
    await blame(store, stream, 20, checkpoints)
    assert await _versions(db, stream) == sorted(keep.snapshots_kept(range(2, 21, 2), 20))
    for version in (40, 64, 13, 64):
        assert await blame(store, stream, version, checkpoints) == await blame(
            store, stream, version
        )
        stored = await _versions(db, stream)
        assert stored == sorted(keep.snapshots_kept(stored, max(stored)))
        assert len(stored) <= 2 + 4
    assert max(await _versions(db, stream)) == 64


async def test_blame_answers_when_checkpoints_cannot_be_read_or_saved(
    store: EventStore, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, ["la ", "di ", "da ", "dum "])
    await db.execute("DROP TABLE blame_checkpoints")
    with caplog.at_level(logging.WARNING, logger="projections"):
        found = await Blames(store, Checkpoints(db, every=2)).blame(stream)
    assert found == await blame(store, stream)
    messages = {r.getMessage() for r in caplog.records}
    assert "a blame checkpoint is passed over" in messages
    assert "a blame checkpoint could not be saved" in messages


async def test_no_checkpoint_is_made_while_yrs_holds_an_update_pending(
    store: EventStore, db: Database
) -> None:
    stream, doc = f"project-{uuid.uuid4()}", Doc[Any]()
    lyrics = doc.get("lyrics", type=Text)
    made = []
    for word in ("la ", "di ", "da "):
        before = doc.get_state()
        lyrics.insert(len(str(lyrics).encode()), word)
        made.append(doc.get_update(before))
    # "di " reaches the log before "la ", which it follows: pending from 1 until 2
    for user, update in (("bob", made[1]), ("ana", made[0]), ("ana", made[2])):
        await store.append(stream, [NewEvent(DOC_UPDATED, update, {"user_id": user})])
    checkpoints = Checkpoints(db, every=1)
    head = await blame(store, stream, None, checkpoints)
    assert "".join(run.text for run in head.runs) == "la di da "
    assert await _versions(db, stream) == [2, 3]  # not at 1, where "di " waits
    for version in range(4):
        assert await Blames(store, checkpoints).blame(stream, version) == await blame(
            store, stream, version
        )


async def test_no_checkpoint_is_made_while_part_of_an_update_waits(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    ana, bob = Doc[Any](), Doc[Any]()
    mine, theirs = ana.get("lyrics", type=Text), bob.get("lyrics", type=Text)
    before = ana.get_state()
    mine.insert(0, "ab")
    first = ana.get_update(before)
    bob.apply_update(first)
    before = bob.get_state()
    theirs.insert(2, "Z")
    late = bob.get_update(before)  # reaches ana, but the log only after her next update
    ana.apply_update(late)
    before = ana.get_state()
    with ana.transaction():
        mine.insert(0, "é")  # lands: it follows ana's own text
        mine.insert(len(str(mine).encode()), "c")  # waits: it follows bob's "Z"
    both = ana.get_update(before)
    for user, update in (("ana", first), ("ana", both), ("bob", late)):
        await store.append(stream, [NewEvent(DOC_UPDATED, update, {"user_id": user})])
    checkpoints = Checkpoints(db, every=1)
    head = await blame(store, stream, None, checkpoints)
    assert "".join(run.text for run in head.runs) == "éabZc"
    assert await _versions(db, stream) == [1, 3]  # not at 2, where "c" waits
    for version in range(4):
        assert await Blames(store, checkpoints).blame(stream, version) == await blame(
            store, stream, version
        )


def test_a_checkpoint_reads_back_as_it_was_written() -> None:
    when = Author("ana", 7, None)
    pieces = [(b"la ", 3, "ana", 7), (b"", 1, None, 5), ("dé".encode(), 3, "bob", 6)]
    made = Checkpoint("project-x", Author(None, 9, None), b"\x00\x00", pieces, {"t": {"pan": when}})
    back = decode(encode(made), "project-x")
    assert (back.at, back.state, back.pieces, back.setters) == (
        made.at,
        made.state,
        made.pieces,
        made.setters,
    )
    with pytest.raises(CheckpointError):
        decode(encode(made), "project-y")
    with pytest.raises(CheckpointError):
        decode(encode(made)[:-3], "project-x")


async def test_a_long_first_blame_is_prepared_in_the_background_then_answered(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, [f"w{n} " for n in range(29)])  # versions 1..30
    gate = Gate(store)
    blames = Blames(gate.as_store(), Checkpoints(db, every=10), background_above=12)
    try:
        assert await blames.blame(stream, 12) == await blame(store, stream, 12)  # short enough
        gate.shut.set()  # the log's reads wait from here on, till `opened`
        with pytest.raises(Preparing) as first:
            await blames.blame(stream)
        assert (first.value.upto, first.value.retry_after) == (30, 1)
        with pytest.raises(Preparing) as again:  # one replay under way, not another
            await blames.blame(stream, 25)
        assert again.value.upto == 30
        gate.opened.set()
        await asyncio.wait_for(blames.prepared(stream), 30)
        assert await _versions(db, stream) == [10, 20, 30]
        reads = Reads(store)
        later = Blames(reads.as_store(), Checkpoints(db, every=10), background_above=12)
        for version in (30, 25, 7):
            assert await later.blame(stream, version) == await blame(store, stream, version)
        assert reads.starts == [21, 1]  # 30 from its checkpoint, 25 from 20, 7 from 0
        assert await blames.blame(stream) == await blame(store, stream)
        # the project grows by more than that: the first blame since is prepared again
        await _typed(store, stream, [f"v{n} " for n in range(20)])
        with pytest.raises(Preparing):
            await blames.blame(stream)
        await asyncio.wait_for(blames.prepared(stream), 30)
        assert await blames.blame(stream) == await blame(store, stream)
    finally:
        await blames.close()


async def test_closing_stops_a_blame_prepared_in_the_background(
    store: EventStore, db: Database
) -> None:
    stream = f"project-{uuid.uuid4()}"
    await _typed(store, stream, [f"w{n} " for n in range(9)])
    blames = Blames(store, Checkpoints(db, every=5), background_above=1)
    with pytest.raises(Preparing):
        await blames.blame(stream)
    await asyncio.wait_for(blames.close(), 30)
    await asyncio.wait_for(blames.prepared(stream), 1)  # nothing under way any more
