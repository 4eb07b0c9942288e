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

from domain.events import DOC_UPDATED, SESSION_JOINED
from eventstore import EventStore, NewEvent
from harness.databases import open_store
from projections.blame import Blames, blame, target
from projections.replay import VersionNotFound

CLIENTS = 3
STEP = st.tuples(
    st.integers(0, CLIENTS - 1),
    st.sampled_from(["type", "type", "erase", "volume", "pan", "track", "sync", "join"]),
    st.integers(0, 50),
)


class Studio:
    """Clients editing apart and syncing now and then; every update logged under its client's
    user, as a room logs it. Each typed character and each mixer value is unique, so the
    document itself says who wrote it and in which version."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.stream = f"project-{uuid.uuid4()}"
        self.live: Doc[Any] = Doc()
        self.clients: list[Doc[Any]] = [Doc() for _ in range(CLIENTS)]
        self.lyrics = [""]  # the live lyrics at each version
        self.wrote: dict[str, tuple[str, int]] = {}  # character or value -> (user, version)
        self.made = 0

    def _unique(self) -> str:
        self.made += 1  # 3- and 4-byte characters, so that byte positions are exercised
        return chr(0x4E00 + self.made) if self.made % 2 else chr(0x1F300 + self.made)

    async def step(self, client: int, what: str, n: int) -> None:
        doc, version, user = self.clients[client], len(self.lyrics), f"u{client}"
        if what == "sync":
            doc.apply_update(self.live.get_update(doc.get_state()))
            return
        if what == "join":
            await self.store.append(self.stream, [NewEvent(SESSION_JOINED, b"{}", {})])
            self.lyrics.append(self.lyrics[-1])
            return
        before = doc.get_state()
        lyrics, tracks = doc.get("lyrics", type=Text), doc.get("tracks", type=Array)
        if what == "type":
            text = "".join(self._unique() for _ in range(n % 3 + 1))
            self.wrote.update(dict.fromkeys(text, (user, version)))
            lyrics.insert(len(str(lyrics)[: n % (len(str(lyrics)) + 1)].encode()), text)
        elif what == "erase" and str(lyrics):
            text = str(lyrics)
            start = n % len(text)
            del lyrics[len(text[:start].encode()) : len(text[: start + n % 3 + 1].encode())]
        elif what == "track":
            value = self._unique()
            self.wrote[value] = (user, version)
            tracks.append(Map({"id": f"t{self.made}", "volume_db": value, "clips": Array()}))
        elif what in ("volume", "pan") and len(tracks):
            value = self._unique()
            self.wrote[value] = (user, version)
            tracks[n % len(tracks)]["volume_db" if what == "volume" else "pan"] = value
        update = doc.get_update(before)
        if update == b"\x00\x00":
            return
        await self.store.append(self.stream, [NewEvent(DOC_UPDATED, update, {"user_id": user})])
        self.live.apply_update(update)
        self.lyrics.append(str(self.live.get("lyrics", type=Text)))


@settings(
    max_examples=40,
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
