"""The room refuses an update that cuts an astral character (an emoji: two UTF-16 units) in two,
which Yjs clients can write and yrs cannot hold (crdt/characters.py); whole characters, and cuts
the document holds already, pass."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt.encoding import write_var_string, write_var_uint
from crdt.nesting import Nesting
from crdt.update import check_update
from jacameno.collab.errors import MalformedMessage

LIMIT = 64
WRITER, TYPIST = 1001, 2002  # client ids


def _uints(*values: int) -> bytes:
    return b"".join(write_var_uint(value) for value in values)


def _typed(clock: int, origin: int, right: int, text: str = "a") -> bytes:
    """TYPIST's item `text` at `clock`, typed between WRITER's clocks `origin` and `right`, as
    Yjs encodes it (v1: a string item with an origin and a right origin), no deletions."""
    return (
        _uints(1, 1, TYPIST, clock)
        + b"\xc4"
        + _uints(WRITER, origin, WRITER, right)
        + (write_var_string(text) + _uints(0))
    )


def _deleting(*ranges: tuple[int, int]) -> bytes:
    """An update that only deletes WRITER's clocks [start, start + length) for each range."""
    return _uints(0, 1, WRITER, len(ranges)) + b"".join(_uints(*each) for each in ranges)


def _room(text: str) -> tuple[Nesting, bytes]:
    """A room whose document holds WRITER's `text` (in the lyrics, from clock 0)."""
    doc: Doc[Any] = Doc(client_id=WRITER)
    doc.get("lyrics", type=Text).insert(0, text)
    update = doc.get_update()
    nesting = Nesting()
    _check(nesting, update)
    return nesting, update


def _check(nesting: Nesting, update: bytes) -> None:
    summary = check_update(update)
    nesting.record_resolved(nesting.check(summary, LIMIT))


@pytest.mark.parametrize(
    ("text", "origin", "right"),
    [("😀😀", 0, 1), ("😀😀", 2, 3), ("x😀y", 1, 2)],
    ids=["first", "second", "between letters"],
)
def test_an_item_typed_inside_an_emoji_is_refused(text: str, origin: int, right: int) -> None:
    nesting, _ = _room(text)
    with pytest.raises(MalformedMessage, match="between the two UTF-16 units"):
        _check(nesting, _typed(0, origin, right))


def test_an_item_typed_between_whole_characters_passes() -> None:
    nesting, _ = _room("😀😀x")
    for clock, (origin, right) in enumerate([(1, 2), (3, 4)]):
        _check(nesting, _typed(clock, origin, right))


@pytest.mark.parametrize(
    "ranges",
    [[(1, 1)], [(0, 1)], [(1, 2)], [(2, 3)]],
    ids=["second unit", "first unit", "across two", "half then whole"],
)
def test_a_deletion_that_cuts_an_emoji_is_refused(ranges: list[tuple[int, int]]) -> None:
    nesting, _ = _room("😀😀😀")
    with pytest.raises(MalformedMessage, match="cuts a character in two"):
        _check(nesting, _deleting(*ranges))


@pytest.mark.parametrize(
    "ranges",
    [[(0, 2)], [(2, 4)], [(0, 1), (1, 1)], [(0, 6)], [(6, 1)]],
    ids=["one", "two", "two ranges of one", "all", "a letter after"],
)
def test_a_deletion_of_whole_characters_passes(ranges: list[tuple[int, int]]) -> None:
    nesting, _ = _room("😀😀😀x")
    _check(nesting, _deleting(*ranges))


def test_a_cut_the_document_holds_already_passes_again() -> None:
    """A client's sync step 2 repeats its whole delete set: a cut logged before the check (or
    by another node) must not refuse every client that holds it."""
    nesting, _ = _room("😀😀")
    cut = _deleting((1, 2))
    nesting.record(check_update(cut, logged=True))
    _check(nesting, cut)
    _check(nesting, _deleting((0, 4)))  # and the rest of them, later


def test_a_whole_document_with_emoji_loads_and_its_updates_still_pass() -> None:
    """`Nesting.of` keeps the astral characters of a loaded document (and what it deleted)."""
    doc: Doc[Any] = Doc(client_id=WRITER)
    lyrics = doc.get("lyrics", type=Text)
    lyrics.insert(0, "😀a😀b😀")
    del lyrics[len("😀a".encode()) : len("😀a😀".encode())]  # the second emoji, whole
    nesting = Nesting.of(doc.get_update())
    with pytest.raises(MalformedMessage, match="between the two UTF-16 units"):
        _check(nesting, _typed(0, 0, 1))
    with pytest.raises(MalformedMessage, match="cuts a character in two"):
        _check(nesting, _deleting((6, 1)))
    _check(nesting, _deleting((2, 2)))  # deleted already, repeated
    _check(nesting, _typed(0, 2, 3))
