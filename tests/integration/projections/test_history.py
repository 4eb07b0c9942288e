"""History of a project's stream: every event in version order with who and what it changed,
pages, filters by user, time and path, and keystrokes grouped in the summary view."""

from __future__ import annotations

import uuid
from typing import Any

from pycrdt import Array, Doc, Map, Text

from domain.events import DOC_UPDATED, MEMBER_ADDED, encode
from eventstore import EventStore, NewEvent
from projections.history import Filters, history, typing_grouped


class Client:
    """A pycrdt client whose edits are appended to `stream` as its user's updates."""

    def __init__(self, store: EventStore, stream: str, user: str, doc: Doc[Any]) -> None:
        self.store, self.stream, self.user, self.doc = store, stream, user, doc

    async def edit(self, change: Any) -> None:
        before = self.doc.get_state()
        change(self.doc)
        metadata = {"user_id": self.user, "connection_id": "c1", "node": "n1"}
        update = self.doc.get_update(before)
        await self.store.append(self.stream, [NewEvent(DOC_UPDATED, update, metadata)])


async def _project(store: EventStore) -> tuple[str, Client, Client]:
    stream = f"project-{uuid.uuid4()}"
    shared: Doc[Any] = Doc()
    ana, bob = Client(store, stream, "ana", shared), Client(store, stream, "bob", shared)
    member = encode({"user_id": "bob", "role": "editor"})
    await store.append(stream, [NewEvent(MEMBER_ADDED, member, {"user_id": "ana"})])
    await ana.edit(lambda d: d.__setitem__("tracks", Array([Map({"id": "t1", "name": "Bass"})])))
    await bob.edit(lambda d: d.get("tracks", type=Array)[0].__setitem__("volume_db", -6))
    for word in ("la ", "la ", "la"):
        await ana.edit(lambda d, w=word: d.get("lyrics", type=Text).__iadd__(w))
    await bob.edit(lambda d: d.get("meta", type=Map).__setitem__("bpm", 96))
    return stream, ana, bob


async def test_every_event_reads_with_who_and_what_it_changed(store: EventStore) -> None:
    stream, _, _ = await _project(store)
    page = await history(store, stream)
    assert [(e.version, e.type, e.user_id, e.summary) for e in page.entries] == [
        (1, "member.added", "ana", ("added member bob as editor",)),
        (2, "doc.updated", "ana", ("added track Bass",)),
        (3, "doc.updated", "bob", ("set Bass volume to -6 dB",)),
        (4, "doc.updated", "ana", ("typed 3 characters in lyrics",)),
        (5, "doc.updated", "ana", ("typed 3 characters in lyrics",)),
        (6, "doc.updated", "ana", ("typed 2 characters in lyrics",)),
        (7, "doc.updated", "bob", ("set the tempo to 96 BPM",)),
    ]
    assert (page.entries[1].connection_id, page.entries[1].node) == ("c1", "n1")
    assert page.next_after is None


async def test_pages_continue_where_the_last_ended(store: EventStore) -> None:
    stream, _, _ = await _project(store)
    first = await history(store, stream, limit=3)
    assert [e.version for e in first.entries] == [1, 2, 3]
    second = await history(store, stream, after=first.next_after or 0, limit=3)
    assert [e.version for e in second.entries] == [4, 5, 6]
    assert second.entries[0].summary == ("typed 3 characters in lyrics",)
    last = await history(store, stream, after=second.next_after or 0, limit=3)
    assert ([e.version for e in last.entries], last.next_after) == ([7], None)


async def test_filters_by_user_path_and_time(store: EventStore) -> None:
    stream, _, _ = await _project(store)
    bobs = await history(store, stream, filters=Filters(user="bob"))
    assert [e.version for e in bobs.entries] == [3, 7]
    volume = await history(store, stream, filters=Filters(path="tracks/t1/volume_db"))
    assert [e.version for e in volume.entries] == [2, 3]  # adding the track made its volume
    lyrics = await history(store, stream, filters=Filters(path="lyrics"))
    assert [e.version for e in lyrics.entries] == [4, 5, 6]
    events = await store.read_stream(stream)
    at = events[3].recorded_at
    since = await history(store, stream, filters=Filters(since=at))
    assert all(e.recorded_at >= at for e in since.entries)
    assert 4 in [e.version for e in since.entries]
    until = await history(store, stream, filters=Filters(until=at))
    assert all(e.recorded_at <= at for e in until.entries)
    assert 4 in [e.version for e in until.entries]


async def test_a_filter_that_matches_little_reads_a_bounded_stretch(store: EventStore) -> None:
    stream, _, _ = await _project(store)
    page = await history(store, stream, filters=Filters(path="comments"), scan=4)
    assert (page.entries, page.next_after) == ([], 4)


async def test_keystrokes_of_one_user_group_in_the_summary_view(store: EventStore) -> None:
    stream, _, _ = await _project(store)
    grouped = typing_grouped((await history(store, stream)).entries)
    typing = grouped[3]
    assert (typing.version, typing.last_version, typing.events) == (4, 6, 3)
    assert typing.summary == ("typed 8 characters in lyrics",)
    assert [e.version for e in grouped] == [1, 2, 3, 4, 7]
