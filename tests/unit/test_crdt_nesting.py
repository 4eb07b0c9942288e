"""How deep shared types nest: updates that pycrdt writes are placed, types nested deeper than the
limit are refused before anything changes, in one update or across several, whatever the order
of the structs, and a document's nesting comes back whole when it is loaded."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.nesting import UNPLACED, Nesting
from crdt.update import check_update
from jacameno.collab.errors import MalformedMessage

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
    nesting.record_resolved(nesting.check(check_update(update).runs, LIMIT))


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
    nesting.record(check_update(updates[1]).runs)  # "b" before "a": not placed yet
    ((_, depth),) = nesting.check(check_update(updates[1]).runs, LIMIT)
    assert depth == UNPLACED
    with pytest.raises(MalformedMessage, match="lacks"):
        nesting.check(check_update(updates[2]).runs, LIMIT)
    nesting.record(check_update(updates[0]).runs)  # "a" arrives: "b" is placed
    _check(nesting, updates[2])


def test_a_chain_of_waiting_items_is_placed_in_one_go() -> None:
    doc: Doc[Any] = Doc()
    updates = _updates(doc)
    _nested_maps(doc, 3)
    doc.get("root", type=Map)["m"]["m"]["m"]["x"] = Map()
    nesting = Nesting()
    for update in reversed(updates[1:-1]):
        nesting.record(check_update(update).runs)
    nesting.record(check_update(updates[0]).runs)
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
