"""crdt.reconcile: a document edited so that its content equals another's, by a small edit that
keeps what is equal (so concurrent edits of it merge), and crdt.compare, which tells whether two
documents hold the same Yjs state."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt import compare, reconcile
from domain import document
from tests.edits import Edit, edit, edits
from tests.hypothesis_profiles import examples

ROOTS: dict[str, type[Map[Any] | Array[Any] | Text]] = {
    "meta": Map,
    "tracks": Array,
    "lyrics": Text,
}


def built(*histories: list[Edit]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for history in histories:
        for change in history:
            edit(doc, change)
    return doc


def fork(doc: Doc[Any]) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy


def reconciled(current: Doc[Any], target: Doc[Any], whole: bool = False) -> bytes:
    """Reconcile each root of `current` with `target`'s (`whole`: all at once, with
    `reconcile_roots`); the update that made."""
    before = current.get_state()
    if whole:
        reconcile.reconcile_roots(current, target, ROOTS)
        return current.get_update(before)
    for name, kind in ROOTS.items():
        reconcile.reconcile(current.get(name, type=kind), target.get(name, type=kind))
    return current.get_update(before)


history = st.lists(edits, max_size=12)


@pytest.mark.parametrize("whole", [False, True], ids=["root by root", "reconcile_roots"])
@settings(max_examples=examples(150), deadline=None)
@given(history, history, history)
def test_a_document_reconciled_with_another_has_its_content(
    whole: bool, shared: list[Edit], mine: list[Edit], theirs: list[Edit]
) -> None:
    base = built(shared)
    current, target = fork(base), fork(base)
    for change in mine:
        edit(current, change)
    for change in theirs:
        edit(target, change)
    replica = fork(current)
    update = reconciled(current, target, whole)
    assert document.read(current) == document.read(target)
    # The update alone carries it: another replica of the document as it was gets there too.
    replica.apply_update(update)
    assert document.read(replica) == document.read(target)


@settings(max_examples=examples(100), deadline=None)
@given(history, history, st.text(alphabet="xyz", min_size=1, max_size=4))
def test_a_concurrent_edit_of_what_is_kept_survives_the_reconcile(
    mine: list[Edit], theirs: list[Edit], typed: str
) -> None:
    current, target = built(mine), built(mine, theirs)
    other = fork(current)
    update = reconciled(current, target)
    other.get("lyrics", type=Text).insert(0, typed)
    other.get("meta", type=Map)["comment"] = "concurrent"
    concurrent = other.get_update(current.get_state())
    other.apply_update(update)
    current.apply_update(concurrent)
    assert document.read(other) == document.read(current)
    merged = document.read(current)
    wanted = document.read(target)
    assert merged["lyrics"].replace(typed, "", 1) == wanted["lyrics"]
    assert merged["meta"].pop("comment") == "concurrent"
    assert merged == {**wanted, "lyrics": merged["lyrics"]}


def test_items_with_an_id_are_kept_and_changed_in_place() -> None:
    current = built([("add_track", 0.0, 0.0, "Bass"), ("add_track", 1.0, 0.4, "Keys")])
    target = fork(current)
    target.get("tracks", type=Array)[0]["volume_db"] = -6.0
    before = current.get("tracks", type=Array)[0]
    reconciled(current, target)
    after = current.get("tracks", type=Array)[0]
    assert after["volume_db"] == -6.0
    assert before["volume_db"] == -6.0  # the same Yjs map was changed, not replaced by a copy
    assert len(current.get("tracks", type=Array)) == 2


def comments(doc: Doc[Any], count: int, *, plain: frozenset[int] = frozenset()) -> Doc[Any]:
    listing = doc.get("comments", type=Array)
    with doc.transaction():
        for n in range(count):
            comment = {"id": f"c{n}", "text": f"comment {n}", "resolved": False}
            listing.append(comment if n in plain else Map(comment))
    return doc


def listed(doc: Doc[Any]) -> Any:
    return json.loads(str(doc.get("comments", type=Array)))


def test_reconcile_roots_reads_each_root_array_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Array[i] walks the array from its start: read item by item, 20,000 comments take
    # seconds. Here only the few items that differ are read by index.
    roots = {"comments": Array}
    current = comments(Doc(), 2000)
    target = fork(current)
    listing = target.get("comments", type=Array)
    listing[10]["resolved"] = True
    del listing[1500:1600]
    listing.insert(5, Map({"id": "new", "text": "added", "resolved": False}))
    reads: list[Any] = []
    original = Array.__getitem__

    def counted(array: Array[Any], key: Any) -> Any:
        reads.append(key)
        return original(array, key)

    monkeypatch.setattr(Array, "__getitem__", counted)
    reconcile.reconcile_roots(current, target, roots)
    assert len(reads) < 10
    assert listed(current) == listed(target)
    assert current.get("comments", type=Array)[11]["resolved"] is True


def test_reconcile_roots_keeps_the_kinds_of_the_target() -> None:
    # A plain object where a Yjs Map was, with the same content: replaced, not matched.
    current = comments(Doc(), 3)
    target = comments(Doc(), 3, plain=frozenset({1}))
    reconcile.reconcile_roots(current, target, {"comments": Array})
    listing = current.get("comments", type=Array)
    assert [type(item) for item in listing] == [Map, dict, Map]
    assert listed(current) == listed(target)


def test_reconcile_roots_reads_a_root_of_another_type_item_by_item() -> None:
    # "comments" holds text here (a client may send anything under a root's name): read as an
    # Array, its characters are its items, as reconcile() reads them.
    current: Doc[Any] = Doc()
    target: Doc[Any] = Doc()
    current.get("comments", type=Text).insert(0, "abc")
    target.get("comments", type=Text).insert(0, "xbcd")
    reconcile.reconcile_roots(current, target, {"comments": Array})
    assert listed(current) == listed(target) == ["x", "b", "c", "d"]


def test_text_is_reconciled_by_characters_in_utf8_offsets() -> None:
    doc: Doc[Any] = Doc()
    lyrics = doc.get("lyrics", type=Text)
    lyrics.insert(0, "h😀llo wörld")
    reconcile.reconcile(lyrics, "hé😀llo world!")
    assert str(lyrics) == "hé😀llo world!"


def test_mismatched_kinds_are_refused() -> None:
    doc: Doc[Any] = Doc()
    with pytest.raises(TypeError, match="cannot reconcile a Map with Array"):
        reconcile.reconcile(doc.get("meta", type=Map), doc.get("tracks", type=Array))


def test_compare_tells_equal_states_from_different_ones() -> None:
    doc = built([("type", 0.0, 0.0, "hello"), ("erase", 0.2, 0.5, None)])
    assert compare.differences(doc, fork(doc)) == []
    typed = fork(doc)
    typed.get("lyrics", type=Text).insert(0, "x")
    assert compare.differences(doc, typed)[0].startswith("state vectors differ for 1 client(s)")
    erased = fork(doc)
    del erased.get("lyrics", type=Text)[0:1]
    assert compare.differences(doc, erased) == ["delete sets differ for 1 client(s)"]


def test_a_text_edit_is_coarsened_to_a_bounded_number_of_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every change walks the Y.Text from its start: a long text gets a few larger changes.
    monkeypatch.setattr(reconcile, "TEXT_WALK_BYTES", 1)
    monkeypatch.setattr(reconcile, "MIN_TEXT_CHANGES", 3)
    doc: Doc[Any] = Doc()
    lyrics = doc.get("lyrics", type=Text)
    lyrics.insert(0, "".join(f"line {n}\n" for n in range(50)))
    wanted = "".join(f"line {n}{'!' if n % 5 == 0 else ''}\n" for n in range(50))
    changes: list[Any] = []
    subscription = lyrics.observe(lambda event: changes.append(event.delta))
    reconcile.reconcile(lyrics, wanted)
    lyrics.unobserve(subscription)
    assert str(lyrics) == wanted
    inserted = [op for delta in changes for op in delta if "insert" in op]
    assert len(inserted) <= 3


def test_an_array_that_would_take_too_many_walks_is_refilled_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Items put back far from the start: each insert would walk the array; past the budget the
    # array is emptied and refilled from index 0, its content equal, nothing kept. (A handle of
    # a deleted Map must not be read: yrs may have freed it.)
    target = comments(Doc(), 80)
    for budget, kept in ((100, False), (10**9, True)):
        monkeypatch.setattr(reconcile, "ARRAY_WALK_ITEMS", budget)
        current = comments(Doc(), 50)
        deltas: list[Any] = []
        listing = current.get("comments", type=Array)
        subscription = listing.observe(functools.partial(_delta_into, deltas))
        reconcile.reconcile_roots(current, target, {"comments": Array})
        listing.unobserve(subscription)
        assert listed(current) == listed(target)
        assert ({"retain": 50} in deltas[0]) is kept, deltas[0][:1]


def _delta_into(deltas: list[Any], event: Any) -> None:
    deltas.append(event.delta)
