"""An update cut into parts of a bounded size (crdt.split): every part is a valid update within
the limit, each applies whole when the ones before it have (nothing waits as pending), and the
parts in order make the same document as the whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt.split import CannotSplit, split
from crdt.update import check_state_vector, check_update, struct_ends, structs
from tests.hypothesis_profiles import examples
from tests.unit.text_edits import type_or_erase

_EDIT = st.tuples(
    st.integers(0, 2),  # which client
    st.sampled_from(["type", "erase", "map", "nested", "delete item", "set"]),
    st.text(min_size=1, max_size=30),  # emoji and other UTF-16 pairs included
    st.integers(0, 10**6),
)


def _edit(doc: Doc[Any], what: str, value: str, at: int) -> None:
    text, items, meta = (
        doc.get("lyrics", type=Text),
        doc.get("tracks", type=Array),
        doc.get("meta", type=Map),
    )
    if type_or_erase(text, what, value, at):
        return
    if what == "map":
        items.insert(at % (len(items) + 1), Map({"name": value, "clips": Array([at, value])}))
    elif what == "nested" and len(items) and isinstance(items[at % len(items)], Map):
        clips = items[at % len(items)]["clips"]
        clips.append(Map({"start": float(at), "id": value}))
    elif what == "delete item" and len(items):
        del items[at % len(items)]
    else:
        meta[value[:4]] = at


def _roots(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "lyrics": str(doc.get("lyrics", type=Text)),
        "tracks": json.loads(str(doc.get("tracks", type=Array))),
        "meta": json.loads(str(doc.get("meta", type=Map))),
    }


@settings(max_examples=examples(150), deadline=None)
@given(
    edits=st.lists(_EDIT, min_size=1, max_size=30),
    cut=st.integers(0, 30),
    limit=st.integers(60, 600),
    max_deleted=st.none() | st.integers(1, 40),
)
# A deleted range cut between the two UTF-16 units of an emoji: yrs mangled the text.
@example(
    edits=[(0, "type", "00000000\U00010000" + "0", 0), (0, "erase", "0" * 9, 0)],
    cut=1,
    limit=60,
    max_deleted=1,
)
def test_the_parts_in_order_make_the_same_document_as_the_whole(
    edits: list[tuple[int, str, str, int]], cut: int, limit: int, max_deleted: int | None
) -> None:
    docs: list[Doc[Any]] = [Doc() for _ in range(3)]
    earlier = b""
    cut = min(cut, len(edits) - 1)
    for n, (who, what, value, at) in enumerate(edits):
        if n == cut:
            earlier = docs[0].get_update()
        if n >= cut:  # the update to cut is one client's, as a server-side edit's is
            who = 0
        _edit(docs[who], what, value, at)
        for other in docs:  # everyone in sync, as a room keeps them
            if other is not docs[who]:
                other.apply_update(docs[who].get_update(other.get_state()))
    doc = docs[0]
    before: Doc[Any] = Doc()
    if earlier:
        before.apply_update(earlier)
    update = doc.get_update(before.get_state())
    groups, _ = structs(update)
    biggest = max((s.end - s.start for _, found in groups for s in found), default=0)
    limit = max(limit, biggest + 18)  # a struct, its group's head, the update's frame

    parts = split(update, limit, max_deleted, earlier)
    event("cut" if len(parts) > 1 else "whole")

    assert parts[0] == update if len(parts) == 1 else all(len(p) <= limit for p in parts)
    receiver: Doc[Any] = Doc()
    if earlier:
        receiver.apply_update(earlier)
    for part in parts:
        check_update(part)
        receiver.apply_update(part)
        reached = check_state_vector(receiver.get_state())
        for client, end in struct_ends(part).items():
            assert reached[client] >= end  # it integrated: nothing of it waits as pending
    assert _roots(receiver) == _roots(doc)
    assert check_state_vector(receiver.get_state()) == check_state_vector(doc.get_state())
    # the deletions too: the whole update brings the receiver nothing more
    changes: list[bytes] = []
    receiver.observe(lambda event: changes.append(event.update))
    receiver.apply_update(update)
    assert all(change == b"\x00\x00" for change in changes)


def test_a_fitting_update_is_kept_whole() -> None:
    doc: Doc[Any] = Doc()
    doc.get("lyrics", type=Text).insert(0, "la la la")
    update = doc.get_update()
    assert split(update, len(update)) == [update]


def test_deletions_are_cut_by_how_many_clocks_each_part_deletes() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("lyrics", type=Text)
    for n in range(300):  # 300 items, one per keystroke, so that deleting them is 300 ranges
        text.insert(0 if n % 2 else len(str(text)), "ab"[n % 2])
    state = doc.get_state()
    del text[0:300]
    update = doc.get_update(state)
    parts = split(update, 10_000, max_deleted=100)
    assert len(parts) == 3
    receiver: Doc[Any] = Doc()
    receiver.apply_update(doc.get_update(b"\x00"))
    for part in parts:
        receiver.apply_update(part)
    assert str(receiver.get("lyrics", type=Text)) == ""


def test_an_update_of_several_clients_is_not_cut() -> None:
    """Their structs may name one another's in any order: parts would wait as pending."""
    first: Doc[Any] = Doc()
    first.get("lyrics", type=Text).insert(0, "a" * 100)
    second: Doc[Any] = Doc()
    second.apply_update(first.get_update())
    second.get("lyrics", type=Text).insert(50, "b" * 100)
    assert split(second.get_update(), 10_000) == [second.get_update()]
    with pytest.raises(CannotSplit, match="2 clients"):
        split(second.get_update(), 150)


def test_a_struct_larger_than_the_limit_cannot_be_split() -> None:
    doc: Doc[Any] = Doc()
    doc.get("lyrics", type=Text).insert(0, "x" * 1000)
    with pytest.raises(CannotSplit, match="does not fit"):
        split(doc.get_update(), 200)
    with pytest.raises(ValueError, match="max_deleted"):
        split(doc.get_update(), 200, max_deleted=0)
