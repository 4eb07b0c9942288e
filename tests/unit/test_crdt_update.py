"""Strict checks of Yjs updates: everything pycrdt produces passes, hostile input is refused
before pycrdt sees it, and whatever passes applies without a panic."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from crdt import document
from crdt.encoding import write_var_bytes, write_var_uint
from crdt.update import (
    MAX_DEPTH,
    check_state_vector,
    check_update,
    encode_state_vector,
    merged_state,
    struct_ends,
)
from jacameno.collab.errors import MalformedMessage
from tests.hypothesis_profiles import examples
from tests.unit.text_edits import type_or_erase, typed_inside_a_character

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _rich_doc() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    meta: Map[Any] = Map()
    tracks: Array[Any] = Array()
    doc["meta"] = meta
    doc["tracks"] = tracks
    doc["lyrics"] = lyrics = Text()
    doc["xml"] = xml = XmlFragment()
    with doc.transaction():
        meta["title"] = "Song ✓ 😀"
        meta["bpm"] = 120
        meta["bytes"] = b"\x00\x01"
        meta["nested"] = {"a": [1, {"b": [2.5, None, True]}]}
        tracks.append(Map({"name": "drums", "clips": Array([Map({"start": 0})])}))
        lyrics.insert(0, "hello 😀 world")
        lyrics.format(0, 5, {"bold": True})
        lyrics.insert_embed(3, {"image": "x"})
        xml.children.append(XmlElement("p", {"a": "b"}, [XmlText("hi")]))
    with doc.transaction():
        del lyrics[0:3]
        tracks.append(Map({"name": "bass"}))
    return doc


def test_updates_pycrdt_writes_pass() -> None:
    doc = _rich_doc()
    summary = check_update(doc.get_update())
    assert summary.clients == (doc.client_id,)
    assert summary.structs > 0
    assert summary.deletions > 0
    assert list(check_state_vector(doc.get_state())) == [doc.client_id]


@given(st.lists(st.tuples(st.text(max_size=5), json_values), max_size=5))
@settings(max_examples=examples(60), deadline=None)
def test_any_json_value_written_by_pycrdt_passes(entries: list[tuple[str, Any]]) -> None:
    doc: Doc[Any] = Doc()
    m: Map[Any] = Map()
    doc["m"] = m
    with doc.transaction():
        for key, value in entries:
            m[key] = value
    assert check_update(doc.get_update()).clients == ((doc.client_id,) if entries else ())


def _any_update(value: bytes, *, client: int = 5, clock: int = 0) -> bytes:
    struct = bytes([8 | 32]) + write_var_uint(1) + write_var_bytes(b"m") + write_var_bytes(b"k")
    struct += write_var_uint(1) + value
    header = write_var_uint(1) + write_var_uint(1) + write_var_uint(client)
    return header + write_var_uint(clock) + struct + write_var_uint(0)


HOSTILE = {
    "deep nesting": _any_update(b"\x75\x01" * (MAX_DEPTH + 2) + b"\x7e"),
    "clock over 32 bits": _any_update(b"\x7e", clock=2**32),
    "client id over 53 bits": _any_update(b"\x7e", client=2**53),
    "varint over 53 bits": _any_update(b"\x7d" + b"\xff" * 8 + b"\x01"),
    "BigInt": _any_update(b"\x7a" + (2**63 - 1).to_bytes(8, "big")),
    "small BigInt": _any_update(b"\x7a" + (7).to_bytes(8, "big")),
    "BigInt in an array": _any_update(b"\x75\x01\x7a" + (1).to_bytes(8, "big")),
    "array length beyond the data": _any_update(b"\x75" + write_var_uint(2**40)),
    "unknown value tag": _any_update(b"\x10"),
    "invalid utf-8": _any_update(b"\x77\x02\xff\xfe"),
    "trailing bytes": b"\x00\x00\x00",
    "truncated": b"\x01\x01",
    "unknown content kind (yrs Move)": write_var_uint(1) + b"\x01\x05\x00\x0b" + b"\x00",
    "deleted range over 32 bits": b"\x00\x01\x05\x01" + write_var_uint(2**32) + b"\x01",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_updates_are_refused(name: str) -> None:
    with pytest.raises(MalformedMessage):
        check_update(HOSTILE[name])


def test_a_bigint_already_in_the_log_is_let_through() -> None:
    """Logs written before BigInts were refused may hold some: reading them must not fail."""
    assert check_update(HOSTILE["BigInt"], logged=True).structs == 1
    with pytest.raises(MalformedMessage):
        check_update(HOSTILE["varint over 53 bits"], logged=True)


def test_a_bigint_would_read_back_as_another_number() -> None:
    """Why BigInts are refused: pycrdt re-encodes 2^63 - 1 as a float, which loads as 2^63."""
    online: Doc[Any] = Doc()
    document.apply(online, _any_update(b"\x7a" + (2**63 - 1).to_bytes(8, "big")), "test")
    assert online.get("m", type=Map)["k"] == 2**63 - 1
    later = document.build(online.get_update(), [])
    assert later.get("m", type=Map)["k"] == 2.0**63


@given(st.binary(max_size=80))
@settings(max_examples=examples(400), deadline=None)
def test_bytes_that_pass_the_check_apply_without_a_panic(data: bytes) -> None:
    try:
        check_update(data)
    except MalformedMessage:
        return
    doc: Doc[Any] = Doc()
    with contextlib.suppress(MalformedMessage):
        document.apply(doc, data, "test")


@given(st.binary(max_size=40))
@settings(max_examples=examples(200), deadline=None)
def test_mutations_of_a_real_update_never_crash(noise: bytes) -> None:
    update = bytearray(_rich_doc().get_update())
    for i, byte in enumerate(noise):
        update[(i * 37 + byte) % len(update)] = byte
    try:
        check_update(bytes(update))
    except MalformedMessage:
        return
    doc: Doc[Any] = Doc()
    with contextlib.suppress(MalformedMessage):
        document.apply(doc, bytes(update), "test")


_EDIT = st.tuples(
    st.sampled_from(["type", "erase", "map", "array"]),
    st.text(alphabet="aé€😀", min_size=1, max_size=5),
    st.integers(0, 20),
)


@given(edits=st.lists(_EDIT, min_size=1, max_size=12), cut=st.integers(0, 12))
def test_struct_ends_are_the_clocks_yrs_reaches(
    edits: list[tuple[str, str, int]], cut: int
) -> None:
    """A document's whole update, and the update of its later edits against an earlier state:
    `struct_ends` says where each client's structs end as yrs counts (strings in UTF-16 units,
    deleted and collected ones included), and so do `check_update`'s ends and runs: each
    client's runs of the whole document tile its clocks from 0, with no gap and no overlap."""
    doc: Doc[Any] = Doc()
    text, items = doc.get("lyrics", type=Text), doc.get("tracks", type=Array)
    earlier = doc.get_state()
    for n, (what, value, at) in enumerate(edits):
        if n == cut:
            earlier = doc.get_state()
        if type_or_erase(text, what, value, at):
            continue
        if what == "map":
            items.append(Map({"name": value}))
        else:
            items.append(Array([value, at]))
    whole = doc.get_update()
    assert struct_ends(whole) == check_state_vector(doc.get_state())
    summary = check_update(whole)
    assert dict(summary.ends) == struct_ends(whole)
    reached: dict[int, int] = {}
    for run in summary.runs:
        assert run.clock == reached.get(run.client, 0)
        reached[run.client] = run.clock + run.length
    assert reached == struct_ends(whole)
    later = doc.get_update(earlier)
    sv = check_state_vector(doc.get_state())
    assert struct_ends(later) == {
        c: e for c, e in sv.items() if e > check_state_vector(earlier).get(c, 0)
    }


@given(
    st.lists(st.tuples(st.integers(0, 2**53 - 1), st.integers(0, 2**32 - 1)), max_size=8),
    st.lists(st.tuples(st.integers(0, 2**53 - 1), st.integers(0, 2**32 - 1)), max_size=8),
)
def test_merged_state_vectors_hold_each_clients_highest_clock(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    left, right = dict(a), dict(b)
    merged = merged_state(left, right)
    assert check_state_vector(encode_state_vector(merged)) == merged
    assert merged.keys() == left.keys() | right.keys()
    for client, clock in merged.items():
        assert clock == max(left.get(client, 0), right.get(client, 0))


def test_an_update_against_a_merged_state_lacks_what_either_side_holds() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("lyrics", type=Text)
    text += "sent"
    sent = doc.get_update()
    other: Doc[Any] = Doc()
    other.get("lyrics", type=Text).insert(0, "own")
    doc.apply_update(other.get_update())
    text += " later"
    clocks = merged_state(check_state_vector(other.get_state()), struct_ends(sent))
    missing = doc.get_update(encode_state_vector(clocks))
    assert struct_ends(missing) == {doc.client_id: len("sent later")}
    assert len(missing) < len(doc.get_update())
    holder: Doc[Any] = Doc()  # what the other side holds: its own, and what it was sent
    holder.apply_update(other.get_update())
    holder.apply_update(sent)
    holder.apply_update(missing)
    assert str(holder.get("lyrics", type=Text)) == str(text)
    assert check_state_vector(encode_state_vector({})) == {}


def test_an_item_typed_before_itself_is_refused() -> None:
    """pycrdt counts a text's positions in UTF-8 bytes: typing inside a character gives an item
    whose right origin is its own id. Every other document would keep it pending for good while
    its writer shows it; a log that holds one already still reads."""
    updates = typed_inside_a_character()
    check_update(updates[0])
    check_update(updates[1])
    with pytest.raises(MalformedMessage, match="typed before itself"):
        check_update(updates[2])
    assert check_update(updates[2], logged=True).structs == 1
