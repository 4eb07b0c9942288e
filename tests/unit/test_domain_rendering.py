"""The rendering kept update by update (domain.rendering) equals the document rendered whole
(`plain`) after every update, whatever several clients did concurrently; what each update changed
is what the whole renderings on either side of it say; the lyrics typed and deleted are counted
alike from the text's deltas and from the updates' structs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, TransactionEvent

from crdt import MalformedUpdate
from domain.changes import Change, changes
from domain.document import plain
from domain.rendering import Rendering
from tests.edits import Edit, edit, edits
from tests.hypothesis_profiles import examples
from tests.unit.text_edits import typed_inside_a_character_before_another_type

# Edits beyond tests.edits: the other schema roots, a root outside the schema, a root written
# with another type than the schema's.
EXTRA = (
    "comment",
    "marker",
    "notes",
    "note_value",
    "note_deleted",
    "note_nested",
    "odd_root",
    "odd_list",
    "embed",
    "unembed",
)
# Values a map outside the schema may hold, as clients write them: each renders its own way.
NOTE_VALUES: tuple[Any, ...] = (1.0, 2.5, -0.0, float("nan"), b"\x01\x02", {"x": [1.0, None]}, "s")


def extra(doc: Doc[Any], kind: str, value: Any) -> None:
    with doc.transaction():
        if kind == "comment":
            doc.get("comments", type=Array).append(Map({"id": str(value), "text": "hm"}))
        elif kind == "marker":
            doc.get("markers", type=Array).append(Map({"name": str(value), "at": 1.5}))
        elif kind == "notes":
            doc.get("notes", type=Map)["n"] = str(value)
        elif kind == "note_value":
            notes = doc.get("notes", type=Map)
            notes[f"k{value}"] = NOTE_VALUES[(len(notes) + value) % len(NOTE_VALUES)]
        elif kind == "note_deleted":
            notes = doc.get("notes", type=Map)
            for key in sorted(notes.keys())[:1]:
                del notes[key]
        elif kind == "note_nested":
            notes = doc.get("notes", type=Map)
            nested = notes.get("m")
            if isinstance(nested, Map):
                nested[f"v{value}"] = Array([value, Text("t")])
            else:
                notes["m"] = Map({"v": value})
        elif kind == "odd_list":
            doc.get("odd_list", type=Array).append(Map({"i": value}))
        elif kind == "embed":  # takes a position in the lyrics, spells nothing in its string
            lyrics = doc.get("lyrics", type=Text)
            text = str(lyrics)  # a position between characters, embeds counted
            lyrics.insert_embed(_position(lyrics, len(text) // 2), {"x": 1})
        elif kind == "unembed":
            lyrics = doc.get("lyrics", type=Text)
            at = 0
            for content, _ in lyrics.diff():
                if not isinstance(content, str):
                    del lyrics[at : at + 1]
                    break
                at += len(content.encode())
        else:
            doc.get("lyrics2", type=Text).insert(0, str(value))


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.one_of(edits, st.sampled_from(EXTRA)), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_the_rendering_kept_by_updates_equals_the_whole_rendering(
    steps: list[tuple[int, Edit | str, bool]],
) -> None:
    clients: list[Doc[Any]] = [Doc(client_id=i + 1) for i in range(3)]
    outbox: list[list[bytes]] = [[] for _ in clients]
    for index, client in enumerate(clients):
        client.observe(lambda event, i=index: _capture(outbox[i], event))
    # Two kept by `apply`, two by `changed` (each rendering of both kinds).
    renderings = [Rendering(Doc(), counted=counted) for counted in (False, True, False, True)]
    for who, change, deliver in steps:
        if isinstance(change, str):
            extra(clients[who], change, who)
        else:
            edit(clients[who], change)
        if deliver:  # the room receives what the client has sent so far; peers sync later
            for update in outbox[who]:
                _apply_both(renderings, update)
                for other in clients:
                    other.apply_update(update)
            outbox[who].clear()
        for rendering in renderings:
            assert rendering.value == plain(rendering.doc)
    for queue in outbox:
        for update in queue:
            _apply_both(renderings, update)
    for rendering in renderings:
        assert rendering.value == plain(rendering.doc)


def _apply_both(renderings: list[Rendering], update: bytes) -> None:
    """Apply to the renderings: the one that reads the deltas and the one that counts from
    updates count the lyrics alike (where both can: neither with an embed in the lyrics)."""
    for rendering in renderings[:2]:
        _apply(rendering, update)
    for rendering in renderings[2:]:
        _changed(rendering, update)
    by_deltas, counted = (rendering.lyrics for rendering in renderings[:2])
    if by_deltas is not None and counted is not None:
        assert by_deltas == counted


def _position(lyrics: Text, characters: int) -> int:
    """The text's position (UTF-8 bytes, an embed one) before its `characters`-th character."""
    at = 0
    for content, _ in lyrics.diff():
        if not isinstance(content, str):
            at += 1
            continue
        if characters <= len(content):
            return at + len(content[:characters].encode())
        characters -= len(content)
        at += len(content.encode())
    return at


def _capture(queue: list[bytes], event: TransactionEvent) -> None:
    if event.update != b"\x00\x00":
        queue.append(event.update)


def _changed(rendering: Rendering, update: bytes) -> None:
    """What `changed` says of `update` (comparing only the keys it wrote in a map outside the
    schema) is what the whole renderings on either side of it say (compared as JSON: a NaN a
    map holds is unequal to itself, and the key order of a dict is no difference)."""
    before = plain(rendering.doc)
    try:
        found = rendering.changed(update, "test")
    except MalformedUpdate:
        return
    expected = changes(before, plain(rendering.doc), rendering.lyrics)
    assert _json(found) == _json(expected)


def _json(found: list[Change]) -> str:
    return json.dumps([dataclasses.asdict(c) for c in found], sort_keys=True, default=repr)


def _apply(rendering: Rendering, update: bytes) -> None:
    before = rendering.value
    old, new = rendering.apply(update, "test")
    assert old is before
    assert new is rendering.value


def test_an_update_that_does_not_apply_leaves_the_next_rendering_whole() -> None:
    source: Doc[Any] = Doc()
    source.get("lyrics", type=Text).insert(0, "hello")
    rendering = Rendering(Doc())
    with pytest.raises(MalformedUpdate):
        rendering.apply(b"\x05\xff", "test")
    assert rendering.stale
    _, after = rendering.apply(source.get_update(), "test")
    assert after == plain(rendering.doc)
    assert after["lyrics"] == "hello"


def test_lyrics_with_an_embed_are_kept_right_as_typing_goes_on_after_it() -> None:
    source: Doc[Any] = Doc()
    lyrics = source.get("lyrics", type=Text)
    rendering = Rendering(Doc())
    steps: list[Callable[[], None]] = [
        lambda: lyrics.insert(0, "héllo"),
        lambda: lyrics.insert_embed(3, {"image": 1}),
        lambda: lyrics.insert(len("hél".encode()) + 1, "X"),  # after the embed's position
        lambda: lyrics.insert(len(str(lyrics).encode()) + 1, "!"),
    ]
    for step in steps:
        state = source.get_state()
        step()
        _, after = rendering.apply(source.get_update(state), "test")
        assert after["lyrics"] == str(lyrics) == plain(rendering.doc)["lyrics"]
    assert str(lyrics) == "hélXlo!"


@pytest.mark.parametrize("counted", [False, True])
def test_typing_inside_a_character_before_another_type_changes_what_the_renderings_say(
    counted: bool,
) -> None:
    """yrs renders such a text as only the new characters (found by the document fold's
    property test): what the update changed is what the whole renderings say, "typed 2" and
    "deleted 4", whether the lyrics are counted from the updates or read from the text."""
    rendering = Rendering(Doc(), counted=counted)
    whole: Doc[Any] = Doc()
    for update in typed_inside_a_character_before_another_type():
        before = plain(whole)
        whole.apply_update(update)
        assert rendering.changed(update, "test") == changes(before, plain(whole))
    assert rendering.value["lyrics"] == "a\n"
