"""What changed between two versions of a project: the document at each (projections.replay),
compared as plain JSON by domain.changes (tracks, clips, mixer values, meta, comments, markers,
other roots, each with its value before and after), and the lyrics as runs of equal, inserted
and deleted text (docs/history.md, "Diff").

The lyrics are compared by crdt.textdiff (by lines, then by characters within the lines that
differ): the runs rebuild both texts exactly, but they are a short edit, not necessarily the one
the collaborators typed.
Either version may be the later one: a diff from M to N < M says what turns M back into N."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from crdt.textdiff import opcodes
from domain.changes import (
    DELETED,
    TYPED,
    TYPING,
    Change,
    changes,
    lyrics_change,
)
from domain.document import plain
from eventstore import EventStore
from projections.replay import State, state_at

EQUAL = "equal"
INSERTED = "insert"
DELETED_TEXT = "delete"


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of lyrics: kept (`equal`), only in the later text (`insert`) or only in the
    earlier one (`delete`)."""

    op: str
    text: str


@dataclass(frozen=True, slots=True)
class Diff:
    """The two points compared, what changed from the first to the second, the lyrics' runs."""

    start: State
    end: State
    changes: tuple[Change, ...]
    lyrics: tuple[Run, ...]

    def public(self) -> dict[str, Any]:
        return {
            "from": _point(self.start),
            "to": _point(self.end),
            "changes": [
                {
                    "kind": c.kind,
                    "path": c.path,
                    "summary": c.summary,
                    "before": c.before,
                    "after": c.after,
                }
                for c in self.changes
            ],
            "lyrics": [{"op": r.op, "text": r.text} for r in self.lyrics],
        }


def _point(state: State) -> dict[str, Any]:
    stamp = None if state.recorded_at is None else state.recorded_at.isoformat()
    return {"version": state.version, "recorded_at": stamp}


def runs(before: str, after: str) -> list[Run]:
    """The lyrics `before` and `after` as runs: the `equal` and `delete` runs spell `before`,
    the `equal` and `insert` runs spell `after`; no two neighbours share an op, no run is empty."""
    found: list[Run] = []
    for tag, i1, i2, j1, j2 in opcodes(before, after):
        if tag == EQUAL:
            found.append(Run(EQUAL, before[i1:i2]))
        else:
            found += [Run(DELETED_TEXT, before[i1:i2]), Run(INSERTED, after[j1:j2])]
    merged: list[Run] = []
    for run in found:
        if not run.text:
            continue
        if merged and merged[-1].op == run.op:
            merged[-1] = Run(run.op, merged[-1].text + run.text)
        else:
            merged.append(run)
    return merged


def compare(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[Change], list[Run]]:
    """The changes from the plain document `before` to `after`, and the lyrics' runs. The
    lyrics' counts come from the runs, so that the sentences and the runs agree."""
    lyrics_runs = runs(_text(before.get("lyrics")), _text(after.get("lyrics")))
    found = [c for c in changes(before, after) if c.kind not in TYPING]
    typed = sum(len(r.text) for r in lyrics_runs if r.op == INSERTED)
    deleted = sum(len(r.text) for r in lyrics_runs if r.op == DELETED_TEXT)
    counted = [lyrics_change(TYPED, typed), lyrics_change(DELETED, deleted)]
    # in document order: meta, tracks, lyrics, then comments, markers and other roots
    at = next((i for i, c in enumerate(found) if not _before_lyrics(c.path)), len(found))
    found[at:at] = [c for c in counted if c is not None]
    return found, lyrics_runs


def _before_lyrics(path: str) -> bool:
    return path == "tracks" or path.startswith(("meta/", "tracks/"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def diff(store: EventStore, stream: str, start: int, end: int) -> Diff:
    """What changed from version `start` to version `end` of `stream` (either may be the
    greater); VersionNotFound (projections.replay) if either is beyond the head."""
    first = await state_at(store, stream, start)
    second = first if end == start else await state_at(store, stream, end)
    # off the event loop: a long document takes a while to read and compare
    found, lyrics_runs = await asyncio.to_thread(
        lambda: compare(plain(first.doc), plain(second.doc))
    )
    return Diff(first, second, tuple(found), tuple(lyrics_runs))
