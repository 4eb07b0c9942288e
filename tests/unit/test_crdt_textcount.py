"""Characters typed into and deleted from one root text, counted from each update's structs
(crdt.textcount): for random edits of several clients, exchanged in random order, the counts
equal what yrs's own change delta of the text says, other texts (another root, one nested in a
map) never count, and what cannot be told (a pending update, an embed) answers None."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, merge_updates

from crdt.errors import MalformedUpdate
from crdt.textcount import Counted, TextCounts
from tests.hypothesis_profiles import examples
from tests.unit.text_edits import (
    type_or_erase,
    typed_inside_a_character,
    typed_inside_a_character_before_another_type,
)

_EDIT = st.tuples(
    st.integers(0, 2),  # which client
    st.sampled_from(["type", "erase", "notes", "nested", "item", "sync"]),
    st.text(min_size=1, max_size=12),  # emoji and other UTF-16 pairs included
    st.integers(0, 10**6),
)


def _edit(doc: Doc[Any], what: str, value: str, at: int) -> None:
    if type_or_erase(doc.get("lyrics", type=Text), what, value, at):
        return
    items = doc.get("tracks", type=Array)
    if what == "notes":  # another root text
        type_or_erase(doc.get("notes", type=Text), "type" if at % 3 else "erase", value, at)
    elif what == "nested":  # a text inside a map of an array
        if not len(items):
            items.append(Map({"name": Text(value)}))
        else:
            track = items[at % len(items)]
            type_or_erase(track["name"], "type" if at % 2 else "erase", value, at)
    else:
        items.insert(at % (len(items) + 1), Map({"name": Text(value)}))


def _observed(doc: Doc[Any]) -> tuple[list[Counted], Any]:
    """Counts from the lyrics' change deltas of each transaction (what the text says)."""
    seen: list[Counted] = []

    def observe(event: Any) -> None:
        typed = deleted_bytes = 0
        typed_bytes = 0
        for op in event.delta:
            if "insert" in op:
                typed += len(op["insert"])
                typed_bytes += len(op["insert"].encode("utf-8", "surrogatepass"))
            elif "delete" in op:
                deleted_bytes += op["delete"]
        seen.append(Counted(typed, -1, typed_bytes, deleted_bytes))

    return seen, doc.get("lyrics", type=Text).observe(observe)


def _check(counted: Counted | None, seen: list[Counted], before: int, after: int) -> None:
    assert counted is not None
    if not seen:  # the update did not change the lyrics
        assert (counted.typed, counted.deleted) == (0, 0)
        return
    (said,) = seen
    assert (counted.typed, counted.typed_bytes) == (said.typed, said.typed_bytes)
    assert counted.deleted_bytes == said.deleted_bytes
    assert after - before == counted.typed_bytes - counted.deleted_bytes


@settings(max_examples=examples(200), deadline=None)
@given(edits=st.lists(_EDIT, min_size=1, max_size=40), start=st.integers(0, 40))
def test_counts_equal_the_text_delta(edits: list[tuple[int, str, str, int]], start: int) -> None:
    clients: list[Doc[Any]] = [
        Doc(),
        Doc(),
        Doc(skip_gc=True),
    ]  # the last sends what it typed and deleted
    server: Doc[Any] = Doc()
    counts: TextCounts | None = None
    seen, _ = _observed(server)
    lyrics = server.get("lyrics", type=Text)
    for step, (who, what, value, at) in enumerate(edits):
        doc = clients[who]
        if what == "sync":  # take what the server has: later edits delete others' characters
            doc.apply_update(server.get_update(doc.get_state()))
            continue
        if step == start and counts is None:  # a server that starts from a loaded document
            counts = TextCounts.of(server.get_update(), "lyrics")
        _edit(doc, what, value, at)
        if at % 3 == 0:
            continue  # held: sent with the client's next edit, in one update
        update = doc.get_update(server.get_state())  # all the server lacks: several edits
        counted = counts.count(update) if counts is not None else None
        before, text_before = len(lyrics), str(lyrics)
        seen.clear()
        server.apply_update(update)
        if counts is not None:
            _check(counted, seen, before, len(lyrics))
            assert counted is not None
            assert len(str(lyrics)) - len(text_before) == counted.typed - counted.deleted


def test_a_merged_update_counts_what_it_leaves() -> None:
    """Typed then deleted within one update counts neither; deleting others' characters and
    typing in one update counts both."""
    server: Doc[Any] = Doc()
    lyrics = server.get("lyrics", type=Text)
    lyrics += "hello world"
    counts = TextCounts.of(server.get_update(), "lyrics")
    client: Doc[Any] = Doc()
    client.apply_update(server.get_update())
    text = client.get("lyrics", type=Text)
    state = client.get_state()
    text.insert(5, " there")
    typed = client.get_update(state)
    state = client.get_state()
    with client.transaction():
        del text[5:11]  # the six just typed
        del text[0:5]  # "hello"
        text.insert(0, "héllo")
    merged = merge_updates(typed, client.get_update(state))  # as a client sends what it held
    assert counts.count(merged) == Counted(5, 5, 6, 5)


def test_pending_and_embeds_cannot_be_told() -> None:
    source: Doc[Any] = Doc()
    text = source.get("lyrics", type=Text)
    text += "ab"
    first = source.get_update()
    state = source.get_state()
    text += "cd"
    second = source.get_update(state)
    counts = TextCounts("lyrics")
    assert counts.count(second) is None  # its origin is not there yet: yrs keeps it pending
    assert counts.count(first) is None  # and never again

    counts = TextCounts("lyrics")
    assert counts.count(first) == Counted(2, 0, 2, 0)
    state = source.get_state()
    text.insert_embed(1, {"image": "x"})
    assert counts.count(source.get_update(state)) is None

    counts = TextCounts("lyrics")
    with pytest.raises(MalformedUpdate):
        counts.count(b"\x05\xff")
    assert counts.count(first) is None


def test_an_item_typed_before_itself_cannot_be_told() -> None:
    """pycrdt counts a text's positions in UTF-8 bytes: typing at a byte inside a character
    leaves an empty item in the writer's own document, and the next characters name it as their
    right origin, with their own id. No other document ever has it: they stay pending there."""
    updates = typed_inside_a_character()
    replica: Doc[Any] = Doc()
    counts = TextCounts("lyrics")
    assert counts.count(updates[0]) == Counted(3, 0, 3, 0)
    assert counts.count(updates[1]) == Counted(4, 0, 5, 0)
    for update in updates:
        replica.apply_update(update)
    assert str(replica.get("lyrics", type=Text)) == "-1 00\x80\n"  # "a " is pending
    assert counts.count(updates[2]) is None


def test_an_item_typed_before_an_item_of_another_type_cannot_be_told() -> None:
    """Typing inside a character another client typed, pycrdt names that client's next clock as
    the right origin: here a track's name. yrs then renders the text as only the new characters:
    no count from the structs can say that."""
    updates = typed_inside_a_character_before_another_type()
    counts = TextCounts("lyrics")
    assert [counts.count(update) for update in updates[:3]] == [
        Counted(0, 0, 0, 0),
        Counted(4, 0, 5, 0),
        Counted(0, 0, 0, 0),
    ]
    assert counts.count(updates[3]) is None
