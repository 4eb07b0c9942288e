"""How deep shared types nest: updates that pycrdt writes are placed, types nested deeper than the
limit are refused before anything changes, in one update or across several, whatever the order
of the structs, and a document's nesting comes back whole when it is loaded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt.nesting import UNPLACED, Nesting, _Own
from crdt.update import BESIDE, Run, check_update
from jacameno.collab.errors import MalformedMessage
from tests.hypothesis_profiles import examples
from tests.unit.text_edits import type_or_erase, typed_inside_a_character_before_another_type

LIMIT = 8


def _nested_maps(doc: Doc[Any], levels: int) -> Map[Any]:
    """`levels` maps, each in the previous one's key "m", under root map "root" (depth 1)."""
    inner: Map[Any] = doc.get("root", type=Map)
    for _ in range(levels):
        child: Map[Any] = Map()
        inner["m"] = child
        inner = child
    return inner


def _updates(doc: Doc[Any]) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


def _check(nesting: Nesting, update: bytes) -> None:
    summary = check_update(update)
    nesting.record_resolved(nesting.check(summary, LIMIT))


def test_the_project_schema_passes() -> None:
    doc: Doc[Any] = Doc()
    tracks: Array[Any] = doc.get("tracks", type=Array)
    with doc.transaction():
        tracks.append(Map({"id": "t", "clips": Array([Map({"start": 0, "fx": Map()})])}))
        doc.get("lyrics", type=Text).insert(0, "la la")
    _check(Nesting(), doc.get_update())


def test_types_up_to_the_limit_pass_and_one_more_is_refused() -> None:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        _nested_maps(doc, LIMIT - 1)  # the deepest at depth LIMIT
    nesting = Nesting()
    _check(nesting, doc.get_update())
    deeper: Doc[Any] = Doc()
    with deeper.transaction():
        _nested_maps(deeper, LIMIT)
    with pytest.raises(MalformedMessage, match=f"deeper than {LIMIT}"):
        _check(Nesting(), deeper.get_update())


def test_nesting_built_one_update_at_a_time_is_refused_at_the_limit() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    inner = doc.get("root", type=Map)
    for _ in range(LIMIT):
        child: Map[Any] = Map()
        inner["m"] = child
        inner = child
    nesting = Nesting()
    for update in updates[:-1]:
        _check(nesting, update)
    with pytest.raises(MalformedMessage, match="deeper"):
        _check(nesting, updates[-1])


@pytest.mark.parametrize("text", ["é", "😀", "aé€😀"])
def test_types_typed_after_characters_of_several_bytes_are_still_held_to_the_limit(
    text: str,
) -> None:
    """Characters of several UTF-8 bytes before a chain of types in one update: each structs'
    clock is counted in UTF-16 units, as yrs counts it. Counted by bytes, the chain's items
    were placed at later clocks than theirs, each read its parent's depth off the text, and a
    chain of any depth passed."""
    doc: Doc[Any] = Doc()
    with doc.transaction():
        doc.get("lyrics", type=Text).insert(0, text * 50)
        _nested_maps(doc, LIMIT)  # one deeper than the limit
    with pytest.raises(MalformedMessage, match=f"deeper than {LIMIT}"):
        _check(Nesting(), doc.get_update())


def test_a_type_placed_beside_a_deep_item_is_as_deep_as_it() -> None:
    """Array items after the first name no parent, only their left neighbour."""
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    deepest = _nested_maps(doc, LIMIT - 2)  # depth LIMIT - 1
    array: Array[Any] = Array()
    deepest["a"] = array  # depth LIMIT
    array.append("first")
    array.append(Map())  # beside "first": depth LIMIT + 1
    nesting = Nesting()
    for update in updates[:-1]:
        _check(nesting, update)
    with pytest.raises(MalformedMessage, match="deeper"):
        _check(nesting, updates[-1])


def test_structs_in_any_order_within_an_update_are_placed() -> None:
    """Two clients' structs in one update refer to each other in either order."""
    first: Doc[Any] = Doc()
    second: Doc[Any] = Doc()
    with first.transaction():
        _nested_maps(first, LIMIT - 2)
    second.apply_update(first.get_update())
    deepest: Any = second.get("root", type=Map)
    for _ in range(LIMIT - 2):
        deepest = deepest["m"]
    array: Array[Any] = Array()
    deepest["a"] = array
    first.apply_update(second.get_update())
    assert check_update(first.get_update()).clients  # both clients in one update
    _check(Nesting(), first.get_update())
    array.append(Map())
    with pytest.raises(MalformedMessage, match="deeper"):
        _check(Nesting(), second.get_update())


def test_a_refused_update_leaves_the_nesting_unchanged() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    _nested_maps(doc, LIMIT)
    nesting = Nesting()
    for update in updates[:-1]:
        _check(nesting, update)
    with pytest.raises(MalformedMessage):
        _check(nesting, updates[-1])
    with pytest.raises(MalformedMessage):
        _check(nesting, updates[-1])


def test_a_type_under_an_item_the_document_lacks_is_refused() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    _nested_maps(doc, 2)
    with pytest.raises(MalformedMessage, match="lacks"):
        _check(Nesting(), updates[-1])  # its parent is in the update before


def test_recorded_updates_are_kept_however_deep() -> None:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        _nested_maps(doc, LIMIT + 5)
    nesting = Nesting.of(doc.get_update())
    more: Doc[Any] = Doc()
    more.apply_update(doc.get_update())
    updates = _updates(more)
    deepest: Any = more.get("root", type=Map)
    for _ in range(LIMIT + 5):
        deepest = deepest["m"]
    deepest["x"] = 1  # a value, no type: allowed
    _check(nesting, updates[-1])
    deepest["y"] = Map()
    with pytest.raises(MalformedMessage, match="deeper"):
        _check(nesting, updates[-1])


def test_an_item_that_came_before_its_neighbour_is_placed_when_the_neighbour_arrives() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    array: Array[Any] = doc.get("root", type=Array)
    array.append("a")
    array.append("b")  # beside "a"
    array.append(Map())  # beside "b"
    nesting = Nesting()
    nesting.record(check_update(updates[1]))  # "b" before "a": not placed yet
    ((_, place),) = nesting.check(check_update(updates[1]), LIMIT).places
    assert place == UNPLACED
    with pytest.raises(MalformedMessage, match="lacks"):
        nesting.check(check_update(updates[2]), LIMIT)
    nesting.record(check_update(updates[0]))  # "a" arrives: "b" is placed
    _check(nesting, updates[2])


def test_a_chain_of_waiting_items_is_placed_in_one_go() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    _nested_maps(doc, 3)
    doc.get("root", type=Map)["m"]["m"]["m"]["x"] = Map()
    nesting = Nesting()
    for update in reversed(updates[1:-1]):
        nesting.record(check_update(update))
    nesting.record(check_update(updates[0]))
    _check(nesting, updates[-1])


def test_a_long_text_is_one_run() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("lyrics", type=Text)
    updates = _updates(doc)
    for char in "typing one character at a time":
        text.insert(len(text), char)
    runs = [r for u in updates for r in check_update(u).runs]
    nesting = Nesting()
    for update in updates:
        _check(nesting, update)
    whole = check_update(doc.get_update()).runs
    assert len(runs) == len(updates)
    assert len(whole) == 1


@pytest.mark.parametrize(
    ("before"), ["track", "notes"], ids=["a track's name", "another root text"]
)
def test_an_item_typed_between_items_of_two_types_is_refused(before: str) -> None:
    """pycrdt typing inside another client's two-byte character names that client's next clock
    as the right origin: an item of another type, which Yjs and yrs integrate differently: the
    room's read models and its clients would disagree."""
    *earlier, last = typed_inside_a_character_before_another_type(before)
    nesting = Nesting()
    for update in earlier:
        _check(nesting, update)
    with pytest.raises(MalformedMessage, match="between items of two different types"):
        _check(nesting, last)
    nesting.record(check_update(last, logged=True))  # logged before the check: kept


@pytest.mark.parametrize(
    ("typed", "at"), [("00\x80 ", 3), ("😀😀x", 1), ("😀😀x", 2), ("😀😀x", 3)]
)
def test_an_item_typed_before_a_clock_no_one_has_written_is_refused(typed: str, at: int) -> None:
    """pycrdt typing inside another client's character of several bytes before that client
    typed anything else names as the right origin the clock it will type next: the item would
    wait, and then sit wherever that client types next, in another type maybe."""
    other: Doc[Any] = Doc()
    other.get("lyrics", type=Text).insert(0, typed)
    first = other.get_update()
    writer: Doc[Any] = Doc()
    writer.apply_update(first)
    state = writer.get_state()
    writer.get("lyrics", type=Text).insert(at, "a")  # at a UTF-8 byte inside a character
    nesting = Nesting()
    _check(nesting, first)
    with pytest.raises(MalformedMessage, match="which no one has written"):
        _check(nesting, writer.get_update(state))


_CLIENT_EDIT = st.tuples(
    st.integers(0, 2),  # which client
    st.sampled_from(["type", "type", "type", "erase", "note", "set", "nest", "drop", "sync"]),
    st.text(alphabet="ab é€😀", min_size=1, max_size=4),
    st.integers(1, 997),  # a position, modulo the length: mostly inside
)


@settings(max_examples=examples(60), deadline=None)
@given(edits=st.lists(_CLIENT_EDIT, min_size=5, max_size=40))
def test_what_clients_type_in_any_type_is_never_refused(
    edits: list[tuple[int, str, str, int]],
) -> None:
    """Three clients editing two texts, a root map, nested maps and an array of maps, their
    updates delivered to the room as made and to each other at random: no honest item sits
    between items of two types, and none is refused."""
    docs: list[Doc[Any]] = [Doc() for _ in range(3)]
    room: Doc[Any] = Doc()
    nesting = Nesting()
    sent: list[bytes] = []

    def deliver(update: bytes) -> None:
        _check(nesting, update)
        room.apply_update(update)
        sent.append(update)

    for who, what, value, at in edits:
        doc = docs[who]
        state = doc.get_state()
        if what == "sync":  # this client catches up with the room
            doc.apply_update(room.get_update(state))
            continue
        if not type_or_erase(doc.get("lyrics", type=Text), what, value, at):
            if what == "note":
                type_or_erase(doc.get("notes", type=Text), "type", value, at)
            elif what == "set":
                doc.get("meta", type=Map)[value] = at
            elif what == "nest":
                tracks: Array[Any] = doc.get("tracks", type=Array)
                tracks.insert(at % (len(tracks) + 1), Map({"name": value, "fx": Map({"g": at})}))
            elif len(doc.get("tracks", type=Array)):  # drop
                tracks = doc.get("tracks", type=Array)
                del tracks[at % len(tracks)]
        update = doc.get_update(state)
        if update != b"\x00\x00":
            deliver(update)


_STEP = st.lists(
    st.one_of(
        st.tuples(
            st.just("type"),
            st.sampled_from(["lyrics", "notes"]),
            st.text(alphabet=st.sampled_from("aé€😀\x80"), min_size=1, max_size=12),
        ),
        # in one of the three newest containers, so that chains grow
        st.tuples(st.just("nest"), st.integers(0, 2), st.sampled_from(["map", "array"])),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=examples(60), deadline=None)
@given(steps=st.lists(_STEP, min_size=1, max_size=12))
def test_the_depth_limit_matches_the_documents_true_depths(steps: list[list[Any]]) -> None:
    """Transactions of random text (any characters: emoji, accents) and of types nested in
    random containers, as one client makes them: each update is refused exactly when it makes a
    type deeper than the limit, measured on the client's own document."""
    doc: Doc[Any] = Doc()
    containers: list[tuple[Any, int]] = [(doc.get("root", type=Map), 1)]
    nesting = Nesting()
    for transaction in steps:
        state = doc.get_state()
        deepest = 0
        with doc.transaction():
            for what, where, value in transaction:
                if what == "type":
                    text = doc.get(where, type=Text)
                    text.insert(len(str(text).encode()), value)  # pycrdt counts UTF-8 bytes
                    continue
                parent, depth = containers[max(0, len(containers) - 1 - where)]
                child: Any = Map() if value == "map" else Array()
                if isinstance(parent, Map):
                    parent[f"k{len(containers)}"] = child
                else:
                    parent.append(child)
                containers.append((child, depth + 1))
                deepest = max(deepest, depth + 1)
        update = doc.get_update(state)
        if deepest > LIMIT:
            with pytest.raises(MalformedMessage, match=f"deeper than {LIMIT}"):
                _check(nesting, update)
            return  # the room refused it: the client's later updates would depend on it
        _check(nesting, update)


def test_an_updates_own_runs_are_found_in_any_order() -> None:
    """An update may list one client's structs in several groups, out of clock order: the
    places of its own runs are still found by clock."""
    later, earlier = Run(7, 10, 5, BESIDE, 1, 0, False), Run(7, 0, 4, BESIDE, 1, 0, False)
    own = _Own([(later, 3), (earlier, 2)])
    assert [own.place(7, clock) for clock in (0, 3, 4, 10, 14, 15)] == [2, 2, None, 3, 3, None]
    assert own.place(8, 0) is None
