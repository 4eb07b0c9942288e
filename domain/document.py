"""A project's document read into plain values.

The schema the studio's clients share: three roots, `meta` (a Y.Map of settings such as the
title), `tracks` (a Y.Array of track maps) and `lyrics` (a Y.Text). Reading is tolerant: a root
that is missing or was written with another shared type reads as empty, other roots are
ignored, and what a root holds is returned as it is (JSON-like values; numbers as floats).

`plain(doc)` reads every root, the schema's (with `comments` and `markers`) and any other, into
JSON values: what replay answers and what domain.changes compares."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pycrdt import Array, Doc, Map, Text

ROOTS = ("meta", "tracks", "lyrics")


class ProjectDocument(TypedDict):
    meta: dict[str, Any]
    tracks: list[Any]
    lyrics: str


def empty() -> ProjectDocument:
    return {"meta": {}, "tracks": [], "lyrics": ""}


def read(doc: Doc[Any]) -> ProjectDocument:
    """The schema roots of `doc` as plain values."""
    meta = doc.get("meta", type=Map).to_py()
    tracks = doc.get("tracks", type=Array).to_py()
    return {
        "meta": meta if isinstance(meta, dict) else {},
        "tracks": tracks if isinstance(tracks, list) else [],
        "lyrics": str(doc.get("lyrics", type=Text)),
    }


# Every root DESIGN.md names, with the shared type it is written with.
SCHEMA_ROOTS: dict[str, type[Map[Any] | Array[Any] | Text]] = {
    "meta": Map,
    "tracks": Array,
    "lyrics": Text,
    "comments": Array,
    "markers": Array,
}


def plain_root(root: Map[Any] | Array[Any]) -> Any:
    """A root's content as plain values, parsed from the JSON that yrs renders it to in one call
    (pycrdt's `to_py` makes several calls per value, 10-15 times slower on a studio's tracks, and
    raises on XML). What JSON cannot hold reads as yrs writes it: a number that is not finite as
    null, binary as an array of byte values, XML as its text, a subdocument as {"guid": ...}."""
    return json.loads(str(root))


def _other_root(doc: Doc[Any], name: str) -> Any:
    """A root outside the schema: an update does not say which shared type wrote it, so it reads
    as the first of map, text, array that finds content in it (empty: null)."""
    as_map = plain_root(doc.get(name, type=Map))
    if isinstance(as_map, dict) and as_map:
        return as_map
    as_text = str(doc.get(name, type=Text))
    if as_text:
        return as_text
    as_array = plain_root(doc.get(name, type=Array))
    return as_array if isinstance(as_array, list) and as_array else None


def root_value(doc: Doc[Any], name: str) -> Any:
    """One root as `plain` renders it: a schema root as its shared type (empty when missing or
    of another type: `meta` an object, `lyrics` a string, the others arrays), another as the
    first of map, text, array that finds content in it."""
    kind = SCHEMA_ROOTS.get(name)
    if kind is None:
        return _other_root(doc, name)
    if kind is Text:
        return str(doc.get(name, type=Text))
    value = plain_root(doc.get(name, type=kind))
    empty_value: Any = {} if kind is Map else []
    return value if isinstance(value, type(empty_value)) else empty_value


def plain(doc: Doc[Any]) -> dict[str, Any]:
    """Every root of `doc` as JSON values: the schema's roots always, then the others by name."""
    out = {name: root_value(doc, name) for name in SCHEMA_ROOTS}
    for name in sorted(doc.keys()):
        if name not in out:
            out[name] = root_value(doc, name)
    return out
