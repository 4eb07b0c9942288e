"""A project's document read into plain values.

The schema the studio's clients share: three roots, `meta` (a Y.Map of settings such as the
title), `tracks` (a Y.Array of track maps) and `lyrics` (a Y.Text). Reading is tolerant: a root
that is missing or was written with another shared type reads as empty, other roots are
ignored, and what a root holds is returned as it is (JSON-like values; numbers as floats)."""

from __future__ import annotations

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
