"""The `document` read model's rows, read from a project's Yjs document (DESIGN.md, "Project
document"): `tables(doc)` gives the rows of `doc_projects` and its child tables. Reading is
tolerant: what fits the schema is projected; each value left out (wrong type, unknown key,
missing or repeated id, a kind outside audio|midi|bus) counts one in `schema_problems`. Nothing
in a document raises."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from domain.document import SCHEMA_ROOTS, root_value

# -- what the schema allows ----------------------------------------------------------------------

KINDS = frozenset({"audio", "midi", "bus"})
META_KEYS = frozenset({"title", "bpm", "key", "time_signature"})
TRACK_KEYS = frozenset(
    {"id", "name", "kind", "color", "volume_db", "pan", "muted", "solo", "clips", "analysis"}
)
CLIP_KEYS = frozenset({"id", "asset_id", "start", "length", "offset", "gain_db"})
COMMENT_KEYS = frozenset({"id", "author", "text", "at", "created_at", "resolved"})
# DESIGN.md does not fix a marker's keys: these are projected, others ignored without a count.
MARKER_KEYS = ("id", "name", "at")

# -- the document as rows ----------------------------------------------------------------------


@dataclass(slots=True)
class Tables:
    """One project's rows, column values in each table's column order (minus project_id)."""

    project: dict[str, Any]
    tracks: list[tuple[Any, ...]] = field(default_factory=list)
    clips: list[tuple[Any, ...]] = field(default_factory=list)
    comments: list[tuple[Any, ...]] = field(default_factory=list)
    markers: list[tuple[Any, ...]] = field(default_factory=list)


class _Reader:
    """Takes values from the document's plain form, counting what does not fit."""

    def __init__(self) -> None:
        self.problems = 0

    def unknown(self, value: dict[str, Any], known: frozenset[str]) -> None:
        self.problems += sum(1 for key in value if key not in known)

    def _typed(self, value: dict[str, Any], key: str, fits: Callable[[Any], bool]) -> Any:
        found = value.get(key)
        if found is None or fits(found):
            return found
        self.problems += 1
        return None

    def text(self, value: dict[str, Any], key: str) -> str | None:
        found: str | None = self._typed(value, key, lambda v: isinstance(v, str))
        return found

    def number(self, value: dict[str, Any], key: str) -> float | None:
        found = self._typed(
            value,
            key,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
        )
        return None if found is None else float(found)

    def flag(self, value: dict[str, Any], key: str) -> int | None:
        found = self._typed(value, key, lambda v: isinstance(v, bool))
        return None if found is None else int(found)

    def kind(self, value: dict[str, Any]) -> str | None:
        return self._typed(  # type: ignore[no-any-return]
            value, "kind", lambda v: isinstance(v, str) and v in KINDS
        )

    def items(self, values: Any, ids: set[str] | None) -> list[tuple[int, dict[str, Any]]]:
        """The maps of an array (with their index), each with a new string id when `ids` is given
        (the ids seen so far); the rest counted."""
        if not isinstance(values, list):
            self.problems += 1
            return []
        kept = []
        for index, value in enumerate(values):
            if not isinstance(value, dict):
                self.problems += 1
            elif ids is None:
                kept.append((index, value))
            elif isinstance(value.get("id"), str) and value["id"] not in ids:
                ids.add(value["id"])
                kept.append((index, value))
            else:
                self.problems += 1
        return kept


def _list(value: Any) -> list[Any]:
    """A root array's rendering, read tolerantly."""
    return value if isinstance(value, list) else []


def tables(doc: Doc[Any]) -> Tables:
    """The rows of `doc` (version and updated_at are the caller's): the roots of domain.document
    and `comments` and `markers`, read tolerantly like domain.document.read does."""
    return rows_of({name: root_value(doc, name) for name in SCHEMA_ROOTS})


class Memo:
    """What the rows of each track and comment of the last rendering were, by the object: the
    rendering kept update by update (domain.rendering) hands the untouched ones over as the
    very same objects, so only those an update touched are read again."""

    def __init__(self) -> None:
        self._tracks: dict[int, tuple[Any, tuple[Any, ...], list[tuple[Any, ...]], int]] = {}
        self._comments: dict[int, tuple[Any, tuple[Any, ...], int]] = {}

    def track(self, track: dict[str, Any]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], int]:
        """The track's row (without its position), its clips' rows, and its problems."""
        held = self._tracks.get(id(track))
        if held is not None and held[0] is track:
            return held[1], held[2], held[3]
        r = _Reader()
        row, clips = _track(r, track)
        self._tracks[id(track)] = (track, row, clips, r.problems)
        return row, clips, r.problems

    def comment(self, comment: dict[str, Any]) -> tuple[tuple[Any, ...], int]:
        """The comment's row (without its position) and its problems."""
        held = self._comments.get(id(comment))
        if held is not None and held[0] is comment:
            return held[1], held[2]
        r = _Reader()
        row = _comment(r, comment)
        self._comments[id(comment)] = (comment, row, r.problems)
        return row, r.problems

    def keep(self, tracks: list[Any], comments: list[Any]) -> None:
        """Forget all but these (the rendering's current items)."""
        live = {id(t) for t in tracks}
        self._tracks = {k: v for k, v in self._tracks.items() if k in live}
        live = {id(c) for c in comments}
        self._comments = {k: v for k, v in self._comments.items() if k in live}


def _track(r: _Reader, track: dict[str, Any]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    r.unknown(track, TRACK_KEYS)
    track_id = track["id"]
    row = (
        track_id,
        r.text(track, "name"),
        r.kind(track),
        r.text(track, "color"),
        r.number(track, "volume_db"),
        r.number(track, "pan"),
        r.flag(track, "muted"),
        r.flag(track, "solo"),
    )
    clips = []
    for _, clip in r.items(track.get("clips", []), set()):
        r.unknown(clip, CLIP_KEYS)
        clips.append(
            (
                track_id,
                clip["id"],
                r.text(clip, "asset_id"),
                r.number(clip, "start"),
                r.number(clip, "length"),
                r.number(clip, "offset"),
                r.number(clip, "gain_db"),
            )
        )
    return row, clips


def _comment(r: _Reader, comment: dict[str, Any]) -> tuple[Any, ...]:
    r.unknown(comment, COMMENT_KEYS)
    return (
        comment["id"],
        r.text(comment, "author"),
        r.text(comment, "text"),
        r.number(comment, "at"),
        r.number(comment, "created_at"),
        r.flag(comment, "resolved"),
    )


def rows_of(document: dict[str, Any], memo: Memo | None = None) -> Tables:
    """The rows of a document's plain rendering (domain.document.plain, or the rendering the
    fold keeps update by update: domain.rendering), as `tables` reads them from the document;
    with a `memo`, the tracks and comments it has seen as the same objects are not read again."""
    memo = memo or Memo()
    r = _Reader()
    meta = document.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    r.unknown(meta, META_KEYS)
    lyrics = document.get("lyrics")
    lyrics = lyrics if isinstance(lyrics, str) else ""
    out = Tables(
        {
            "title": r.text(meta, "title"),
            "bpm": r.number(meta, "bpm"),
            "key": r.text(meta, "key"),
            "time_signature": r.text(meta, "time_signature"),
            "lyrics_characters": len(lyrics),
            "lyrics_words": len(lyrics.split()),
            "lyrics_lines": len(lyrics.splitlines()),
        }
    )
    tracks = r.items(_list(document.get("tracks")), set())
    for position, track in tracks:
        row, clips, problems = memo.track(track)
        r.problems += problems
        out.tracks.append((row[0], position, *row[1:]))
        out.clips.extend(clips)
    comments = r.items(_list(document.get("comments")), set())
    for position, comment in comments:
        row, problems = memo.comment(comment)
        r.problems += problems
        out.comments.append((row[0], position, *row[1:]))
    memo.keep([t for _, t in tracks], [c for _, c in comments])
    for position, marker in r.items(_list(document.get("markers")), None):
        marker_id = marker.get("id")
        out.markers.append(
            (
                position,
                marker_id if isinstance(marker_id, str) else None,
                r.text(marker, "name"),
                r.number(marker, "at"),
            )
        )
    out.project["comments"] = len(out.comments)
    out.project["schema_problems"] = r.problems
    return out
