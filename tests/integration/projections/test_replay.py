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
from pycrdt import Doc, Map

from domain.changes import changes
from domain.document import plain
from eventstore import EventStore
from harness.databases import open_store
from projections.history import history
from projections.replay import VersionNotFound, state_at, state_when, version_at
from tests.hypothesis_profiles import examples
from tests.integration.projections.recording import STEP, record


@settings(
    max_examples=examples(25),
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
            stream, seen = await record(store, steps)
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
    stream, seen = await record(store, [(0, "track", 1), (0, "type", 3), (1, "bpm", 5)] * 4)
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
    stream, seen = await record(store, [(0, "track", 1), (0, "type", 2)])
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
    stream, _ = await record(store, [(0, "track", 1), (0, "bpm", 2), (1, "bpm", 3)])
    other: Doc[Any] = Doc()
    other.get("meta", type=Map)["title"] = "from the snapshot"
    await store.save_snapshot(stream, 2, other.get_update())
    assert plain((await state_at(store, stream, 3)).doc)["meta"] == {
        "title": "from the snapshot",
        "bpm": 63.0,
    }
    assert plain((await state_at(store, stream, 1)).doc)["meta"] == {}
