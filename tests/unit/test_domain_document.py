"""The project document read into plain values, whatever the document holds."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from domain import document


def _received(doc: Doc[Any]) -> Doc[Any]:
    """`doc` as another peer holds it: built from its update alone."""
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy


def test_a_document_of_the_schema_reads_as_it_was_written() -> None:
    doc: Doc[Any] = Doc()
    doc["meta"] = Map({"title": "Night Ride", "bpm": 120})
    doc["tracks"] = Array([Map({"id": "t-1", "clips": Array([Map({"start": 0})])})])
    doc["lyrics"] = Text("la la\n")
    assert document.read(_received(doc)) == {
        "meta": {"title": "Night Ride", "bpm": 120.0},
        "tracks": [{"id": "t-1", "clips": [{"start": 0.0}]}],
        "lyrics": "la la\n",
    }


def test_an_empty_document_reads_as_the_empty_project() -> None:
    assert document.read(Doc()) == document.empty() == {"meta": {}, "tracks": [], "lyrics": ""}


def test_roots_of_another_type_read_as_empty_and_other_roots_are_ignored() -> None:
    doc: Doc[Any] = Doc()
    doc["meta"] = Text("not a map")
    doc["tracks"] = Map({"not": "an array"})
    doc["lyrics"] = Array(["not", "text"])
    doc["mixer"] = Map({"gain": 1})
    assert document.read(_received(doc)) == document.empty()


def test_whatever_a_root_holds_is_kept() -> None:
    doc: Doc[Any] = Doc()
    doc["tracks"] = Array(["a string", 3, None, Array([True]), Map({"x": Text("y")})])
    assert document.read(_received(doc))["tracks"] == ["a string", 3.0, None, [True], {"x": "y"}]
