"""Blame, on SQLite and Postgres: for random lyrics and mixer edits from several pycrdt clients,
concurrent and merged as a room merges them, blame at every version covers every character of
the lyrics exactly once, crediting each to the user and version of the update that brought it,
and names the last setter of each mixer value."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt import MalformedUpdate
from domain.events import DOC_UPDATED
from eventstore import EventStore, NewEvent
from harness.databases import open_store
from projections.blame import Blames, blame, target
from projections.replay import VersionNotFound
from tests.hypothesis_profiles import examples
from tests.integration.projections.studio import STEP, Studio


@settings(
    max_examples=examples(40),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=30))
def test_blame_covers_every_character_once_with_its_author_and_names_the_last_setter(
    database_url: str, steps: list[tuple[int, str, int]]
) -> None:
    async def check() -> None:
        store = await open_store(database_url)
        try:
            studio = Studio(store)
            for step in steps:
                await studio.step(*step)
            for version, lyrics in enumerate(studio.lyrics):
                found = await blame(store, studio.stream, version)
                assert found.version == version
                assert "".join(run.text for run in found.runs) == lyrics
                for run in found.runs:
                    assert run.text
                    assert {studio.wrote[c] for c in run.text} == {(run.user_id, run.version)}
                pairs = [(a.user_id, a.version) for a in found.runs]
                assert all(a != b for a, b in itertools.pairwise(pairs))
            head = await blame(store, studio.stream)
            tracks = studio.live.get("tracks", type=Array).to_py() or []
            assert set(head.tracks) == {t["id"] for t in tracks}
            for track in tracks:
                values = head.tracks[track["id"]]
                assert {k: s.value for k, s in values.items()} == {
                    k: v for k, v in track.items() if k in ("volume_db", "pan")
                }
                for setting in values.values():
                    assert studio.wrote[setting.value] == (setting.user_id, setting.version)
        finally:
            await store.close()

    asyncio.run(check())


async def _append(store: EventStore, stream: str, user: str, doc: Doc[Any], edit: Any) -> None:
    before = doc.get_state()
    edit()
    event = NewEvent(DOC_UPDATED, doc.get_update(before), {"user_id": user})
    await store.append(stream, [event])


async def test_the_last_of_several_users_to_set_a_value_is_its_setter(store: EventStore) -> None:
    stream, doc = f"project-{uuid.uuid4()}", Doc[Any]()
    tracks = doc.get("tracks", type=Array)
    track = Map({"id": "bass", "name": "Bass", "volume_db": 0.0, "muted": False})
    await _append(store, stream, "ana", doc, lambda: tracks.append(track))
    await _append(store, stream, "bob", doc, lambda: tracks[0].__setitem__("volume_db", -3.0))
    await _append(store, stream, "cy", doc, lambda: tracks[0].__setitem__("volume_db", -6.0))
    await _append(store, stream, "bob", doc, lambda: tracks[0].__setitem__("pan", 0.5))
    found = (await blame(store, stream)).tracks["bass"]
    shown = {key: (s.value, s.user_id, s.version) for key, s in found.items()}
    assert shown == {
        "name": ("Bass", "ana", 1),
        "volume_db": (-6.0, "cy", 3),
        "pan": (0.5, "bob", 4),
        "muted": (False, "ana", 1),
    }
    assert found["volume_db"].recorded_at is not None
    earlier = (await blame(store, stream, 2)).tracks["bass"]
    assert (earlier["volume_db"].user_id, earlier["volume_db"].version) == ("bob", 2)
    assert "pan" not in earlier


async def test_other_shapes_read_as_empty_and_beyond_the_head_is_not_found(
    store: EventStore,
) -> None:
    stream, doc = f"project-{uuid.uuid4()}", Doc[Any]()
    await _append(store, stream, "ana", doc, lambda: doc.get("lyrics", type=Map).update({"a": 1}))
    await _append(store, stream, "ana", doc, lambda: doc.get("tracks", type=Map).update({"b": 2}))
    found = await blame(store, stream)
    assert (found.version, found.runs, found.tracks) == (2, (), {})
    assert (await blame(store, stream, 0)).recorded_at is None
    with pytest.raises(VersionNotFound):
        await blame(store, stream, 3)


def test_a_blame_path_is_the_lyrics_or_one_track() -> None:
    assert target("lyrics") is None
    assert target("tracks/t1") == "t1"
    for bad in ("meta", "tracks", "tracks/", "tracks/t1/volume_db", "lyrics/x"):
        with pytest.raises(ValueError, match="lyrics or tracks/<track id>"):
            target(bad)


async def test_blames_kept_go_on_from_where_they_stopped_and_answer_as_a_fresh_replay(
    store: EventStore,
) -> None:
    stream, doc = f"project-{uuid.uuid4()}", Doc[Any]()
    lyrics = doc.get("lyrics", type=Text)
    blames = Blames(store, capacity=1)
    for n, word in enumerate(["la ", "di ", "da ", "dum "]):
        user = ("ana", "bob")[n % 2]
        await _append(store, stream, user, doc, lambda w=word: lyrics.insert(0, w))
        kept, fresh = await blames.blame(stream), await blame(store, stream)
        assert kept == fresh
        assert "".join(r.text for r in kept.runs) == str(lyrics)
    # an earlier version than the one kept: replayed from the start, the one kept unharmed
    assert await blames.blame(stream, 2) == await blame(store, stream, 2)
    assert await blames.blame(stream) == await blame(store, stream)
    # another stream pushes it out (capacity 1): still the same answers
    other = f"project-{uuid.uuid4()}"
    await _append(store, other, "cy", Doc[Any](), lambda: None)
    await blames.blame(other)
    assert await blames.blame(stream) == await blame(store, stream)
    with pytest.raises(VersionNotFound):
        await blames.blame(stream, 99)


async def test_a_replay_that_fails_part_way_is_not_kept(store: EventStore) -> None:
    stream, doc = f"project-{uuid.uuid4()}", Doc[Any]()
    lyrics = doc.get("lyrics", type=Text)
    blames = Blames(store)
    await _append(store, stream, "ana", doc, lambda: lyrics.insert(0, "la "))
    assert [r.text for r in (await blames.blame(stream)).runs] == ["la "]
    # a log that cannot be applied (the store takes any bytes): the blame fails, and so does
    # the next one, rather than answer from a replay that stopped in the middle of version 2
    await store.append(stream, [NewEvent(DOC_UPDATED, b"\x05junk", {"user_id": "bob"})])
    await _append(store, stream, "ana", doc, lambda: lyrics.insert(0, "di "))
    for _ in range(2):
        with pytest.raises(MalformedUpdate):
            await blames.blame(stream)
    assert await blames.blame(stream, 1) == await blame(store, stream, 1)
