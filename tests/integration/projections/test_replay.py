"""Replay: the state at every version equals the live document recorded at that version, with
snapshots in the middle, on SQLite and Postgres, and history pages describe each version's change;
a moment finds the last version at or before it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from domain.changes import changes
from domain.document import plain
from domain.events import DOC_UPDATED, SESSION_JOINED
from eventstore import EventStore, NewEvent
from harness.databases import open_store
from projections.history import history
from projections.replay import VersionNotFound, state_at, state_when, version_at

CLIENTS = 3

# One step: (client, what it does, a number that picks where or how much).
STEP = st.tuples(
    st.integers(0, CLIENTS - 1),
    st.sampled_from(
        [
            "track",
            "volume",
            "rename",
            "type",
            "erase",
            "comment",
            "resolve",
            "bpm",
            "clip",
            "move",
            "sync",
            "join",
            "snapshot",
        ]
    ),
    st.integers(0, 50),
)


def _edit(doc: Doc[Any], what: str, n: int) -> None:
    """One studio edit on a client's document (nothing when there is nothing to edit)."""
    tracks = doc.get("tracks", type=Array)
    lyrics = doc.get("lyrics", type=Text)
    comments = doc.get("comments", type=Array)
    if what == "track":
        tracks.append(Map({"id": f"t{uuid.uuid4().hex[:6]}", "name": f"T{n}", "clips": Array()}))
    elif what == "bpm":
        doc.get("meta", type=Map)["bpm"] = 60 + n
    elif what == "type":
        lyrics.insert(n % (len(lyrics) + 1), "la" * (n % 4 + 1))
    elif what == "erase" and len(lyrics):
        start = n % len(lyrics)
        del lyrics[start : min(len(lyrics), start + n % 3 + 1)]
    elif what == "comment":
        comments.append(Map({"id": f"c{n}-{uuid.uuid4().hex[:4]}", "text": "hm", "at": n}))
    elif what == "resolve" and len(comments):
        comments[n % len(comments)]["resolved"] = True
    elif len(tracks):
        track = tracks[n % len(tracks)]
        if what == "volume":
            track["volume_db"] = -n / 2
        elif what == "rename":
            track["name"] = f"Renamed {n}"
        elif what == "clip":
            track["clips"].append(Map({"id": f"k{n}", "start": n / 4, "length": 1.0}))
        elif what == "move" and len(track["clips"]):
            track["clips"][0]["start"] = n / 2


async def _record(store: EventStore, steps: list[tuple[int, str, int]]) -> tuple[str, list[Any]]:
    """Play `steps` from several pycrdt clients into a new stream as a room would (the live
    document applies each update as it is appended); the live document's plain form at each
    version (index 0: before any event)."""
    stream = f"project-{uuid.uuid4()}"
    live: Doc[Any] = Doc()
    clients: list[Doc[Any]] = [Doc() for _ in range(CLIENTS)]
    seen = [plain(live)]
    for client, what, n in steps:
        doc = clients[client]
        if what == "sync":
            doc.apply_update(live.get_update(doc.get_state()))
            continue
        if what == "snapshot":
            if len(seen) > 1:
                await store.save_snapshot(stream, len(seen) - 1, live.get_update())
            continue
        if what == "join":
            await store.append(stream, [NewEvent(SESSION_JOINED, b"{}", {"user_id": "u"})])
            seen.append(seen[-1])
            continue
        before = doc.get_state()
        _edit(doc, what, n)
        update = doc.get_update(before)
        if update == b"\x00\x00":
            continue
        await store.append(stream, [NewEvent(DOC_UPDATED, update, {"user_id": f"u{client}"})])
        live.apply_update(update)
        seen.append(plain(live))
    return stream, seen


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=40))
def test_the_state_at_every_version_is_the_live_document_then(
    database_url: str, steps: list[tuple[int, str, int]]
) -> None:
    async def check() -> None:
        store = await open_store(database_url)
        try:
            stream, seen = await _record(store, steps)
            for version, expected in enumerate(seen):
                assert plain((await state_at(store, stream, version)).doc) == expected
            # History, read in pages of `limit`, describes each version's change from the one
            # before, whatever snapshot a page starts from.
            limit, after, entries = len(steps) % 4 + 1, 0, []
            while True:
                page = await history(store, stream, after=after, limit=limit)
                entries += page.entries
                if page.next_after is None:
                    break
                after = page.next_after
            assert [e.version for e in entries] == list(range(1, len(seen)))
            for entry in entries:
                assert list(entry.changes) == changes(seen[entry.version - 1], seen[entry.version])
        finally:
            await store.close()

    asyncio.run(check())


async def test_a_moment_finds_the_last_version_recorded_at_or_before_it(
    store: EventStore,
) -> None:
    stream, seen = await _record(store, [(0, "track", 1), (0, "type", 3), (1, "bpm", 5)] * 4)
    events = await store.read_stream(stream)
    for event in events:
        expected = max(e.version for e in events if e.recorded_at <= event.recorded_at)
        assert await version_at(store, stream, event.recorded_at) == expected
        state = await state_when(store, stream, event.recorded_at)
        assert (state.version, plain(state.doc)) == (expected, seen[expected])
        earlier = max((e.version for e in events if e.recorded_at < event.recorded_at), default=0)
        assert await version_at(store, stream, event.recorded_at, strictly=True) == earlier
    before = events[0].recorded_at.replace(year=2000)
    assert (await state_when(store, stream, before)).version == 0


async def test_version_zero_is_empty_and_beyond_the_head_is_not_found(store: EventStore) -> None:
    stream, seen = await _record(store, [(0, "track", 1), (0, "type", 2)])
    empty = await state_at(store, stream, 0)
    assert (empty.version, empty.recorded_at, plain(empty.doc)) == (0, None, seen[0])
    with pytest.raises(VersionNotFound) as raised:
        await state_at(store, stream, len(seen))
    assert raised.value.head == len(seen) - 1
    with pytest.raises(VersionNotFound):
        await state_at(store, f"project-{uuid.uuid4()}", 1)


async def test_a_snapshot_is_where_replay_starts(store: EventStore) -> None:
    """A snapshot's state is taken as the truth at its version: one that differs from the log
    shows through, which proves replay started from it rather than from the first event."""
    stream, _ = await _record(store, [(0, "track", 1), (0, "bpm", 2), (1, "bpm", 3)])
    other: Doc[Any] = Doc()
    other.get("meta", type=Map)["title"] = "from the snapshot"
    await store.save_snapshot(stream, 2, other.get_update())
    assert plain((await state_at(store, stream, 3)).doc)["meta"] == {
        "title": "from the snapshot",
        "bpm": 63.0,
    }
    assert plain((await state_at(store, stream, 1)).doc)["meta"] == {}
