"""Random studio edits for property tests: a Hypothesis strategy of edits and a function that
makes one on a pycrdt document (lyrics typed and deleted, meta set and removed, tracks added,
removed and changed, clips added and removed), tolerant of whatever the document holds."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

Edit = tuple[str, float, float, Any]

TRACK_IDS = ("t1", "t2", "t3", "t4")
_TEXT = st.text(alphabet="ab é😀\n", min_size=1, max_size=6)
_VALUE = st.one_of(st.integers(-10, 10), st.floats(-24, 6, allow_nan=False), st.booleans(), _TEXT)
KINDS = (
    "type", "erase", "meta", "unmeta", "add_track", "remove_track", "set_track", "add_clip",
    "remove_clip",
)  # fmt: skip

edits = st.tuples(
    st.sampled_from(KINDS),
    st.floats(0, 1),
    st.floats(0, 1),
    st.one_of(_TEXT, _VALUE, st.sampled_from(TRACK_IDS)),
)


def _at(fraction: float, size: int) -> int:
    return min(int(fraction * (size + 1)), size)


def edit(doc: Doc[Any], change: Edit) -> None:
    """Make `change` on `doc` in one transaction."""
    kind, where, other, value = change
    with doc.transaction():
        lyrics, meta = doc.get("lyrics", type=Text), doc.get("meta", type=Map)
        tracks = doc.get("tracks", type=Array)
        text = str(lyrics)
        if kind == "type":
            at = len(text[: _at(where, len(text))].encode())
            lyrics.insert(at, str(value))
        elif kind == "erase" and text and len(lyrics) == len(text.encode()):
            # not where pycrdt counts more bytes than its text renders (after typing inside a
            # multi-byte character): deleting by the rendered positions panics inside yrs
            start = _at(where, len(text) - 1)
            end = start + 1 + _at(other, min(4, len(text) - start - 1))
            offset = len(text[:start].encode())
            del lyrics[offset : offset + len(text[start:end].encode())]
        elif kind == "meta":
            meta[("title", "bpm", "key")[_at(where, 2)]] = value
        elif kind == "unmeta":
            for key in list(meta.keys())[:1]:
                del meta[key]
        elif kind == "add_track":
            track = Map(
                {
                    "id": TRACK_IDS[_at(other, 3)],
                    "name": str(value),
                    "volume_db": 0.0,
                    "clips": Array([]),
                }
            )
            tracks.insert(_at(where, len(tracks)), track)
        elif len(tracks):
            track = tracks[_at(where, len(tracks) - 1)]
            if not isinstance(track, Map):
                return
            if kind == "remove_track":
                del tracks[_at(where, len(tracks) - 1)]
            elif kind == "set_track":
                track[("name", "volume_db", "muted")[_at(other, 2)]] = value
            else:
                clips = track.get("clips")
                if not isinstance(clips, Array):
                    return
                if kind == "add_clip":
                    clips.insert(_at(other, len(clips)), Map({"id": str(value), "start": other}))
                elif len(clips):
                    del clips[_at(other, len(clips) - 1)]
