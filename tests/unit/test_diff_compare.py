"""A diff between two plain documents: one known answer per kind of change, each with its value
before and after, and the lyrics as runs that rebuild both texts exactly."""

from __future__ import annotations

import copy
from itertools import pairwise
from typing import Any
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from projections.diff import Run, compare, runs


def _doc() -> dict[str, Any]:
    return {
        "meta": {"title": "Night Ride", "bpm": 120.0},
        "tracks": [
            {
                "id": "t1",
                "name": "Drums",
                "volume_db": -3.0,
                "muted": False,
                "clips": [{"id": "Intro", "start": 4.0, "length": 2.0}],
            },
            {"id": "t2", "name": "Bass", "volume_db": 0.0},
        ],
        "lyrics": "la la la\n",
        "comments": [{"id": "c1", "text": "louder", "resolved": False, "at": 3.0}],
        "markers": [{"id": "m1", "name": "Chorus", "at": 32.0}],
        "chat": {"hello": "there"},
    }


def test_every_kind_of_change_is_listed_with_its_values_before_and_after() -> None:
    before = _doc()
    after = copy.deepcopy(before)
    after["meta"]["bpm"] = 128.0
    drums, bass = after["tracks"]
    drums["name"], drums["volume_db"], drums["muted"] = "Kit", -6.0, True
    drums["clips"][0]["start"] = 8.0
    drums["clips"].append({"id": "Outro", "start": 40.0})
    after["tracks"] = [bass, drums, {"id": "t3", "name": "Keys"}]
    after["lyrics"] = "la LA la\nhey\n"
    after["comments"][0]["resolved"] = True
    after["markers"][0]["at"] = 48.0
    after["chat"] = {"hello": "again"}
    found, _ = compare(before, after)
    assert [(c.kind, c.path, c.summary, c.before, c.after) for c in found] == [
        ("meta.bpm", "meta/bpm", "set the tempo from 120 to 128 BPM", 120.0, 128.0),
        ("track.renamed", "tracks/t1/name", "renamed track Drums to Kit", "Drums", "Kit"),
        (
            "track.volume_db",
            "tracks/t1/volume_db",
            "set Kit volume from -3 dB to -6 dB",
            -3.0,
            -6.0,
        ),
        ("track.muted", "tracks/t1/muted", "muted Kit", False, True),
        (
            "clip.start",
            "tracks/t1/clips/Intro/start",
            "moved clip Intro on Kit from 4.0 s to 8.0 s",
            4.0,
            8.0,
        ),
        (
            "clip.added",
            "tracks/t1/clips/Outro",
            "added clip Outro on Kit at 40.0 s",
            None,
            {"id": "Outro", "start": 40.0},
        ),
        ("track.added", "tracks/t3", "added track Keys", None, {"id": "t3", "name": "Keys"}),
        ("track.moved", "tracks", "reordered tracks", ["t1", "t2"], ["t2", "t1"]),
        ("lyrics.typed", "lyrics", "typed 6 characters in lyrics", None, None),
        ("lyrics.deleted", "lyrics", "deleted 2 characters in lyrics", None, None),
        ("comment.resolved", "comments/c1/resolved", "resolved a comment", False, True),
        ("marker.moved", "markers/m1/at", "moved marker Chorus from 32.0 s to 48.0 s", 32.0, 48.0),
        ("root.changed", "chat/hello", "changed chat", "there", "again"),
    ]


def test_deleted_items_keep_what_they_were() -> None:
    before = _doc()
    after = copy.deepcopy(before)
    del after["tracks"][1]
    after["tracks"][0]["clips"] = []
    after["comments"], after["markers"] = [], []
    del after["meta"]["title"]
    found, lyrics = compare(before, after)
    assert [(c.kind, c.path, c.before, c.after) for c in found] == [
        ("meta.title", "meta/title", "Night Ride", None),
        ("clip.deleted", "tracks/t1/clips/Intro", before["tracks"][0]["clips"][0], None),
        ("track.deleted", "tracks/t2", before["tracks"][1], None),
        ("comment.deleted", "comments/c1", before["comments"][0], None),
        ("marker.deleted", "markers/m1", before["markers"][0], None),
    ]
    assert lyrics == [Run("equal", "la la la\n")]


def test_the_same_document_has_no_changes() -> None:
    assert compare(_doc(), _doc()) == ([], [Run("equal", "la la la\n")])
    assert compare({}, {}) == ([], [])


def test_lyrics_runs_name_what_was_kept_inserted_and_deleted() -> None:
    assert runs("la la la", "la LA la!") == [
        Run("equal", "la "),
        Run("delete", "la"),
        Run("insert", "LA"),
        Run("equal", " la"),
        Run("insert", "!"),
    ]
    assert runs("", "hey") == [Run("insert", "hey")]
    assert runs("hey", "") == [Run("delete", "hey")]
    # Far apart edits are two runs, not one span deleted and typed again.
    assert runs("abc" + "x" * 300 + "def", "abC" + "x" * 300 + "Def") == [
        Run("equal", "ab"),
        Run("delete", "c"),
        Run("insert", "C"),
        Run("equal", "x" * 300),
        Run("delete", "d"),
        Run("insert", "D"),
        Run("equal", "ef"),
    ]


TEXT = st.text(alphabet="la \nñ😀", max_size=60)


@given(before=TEXT, after=TEXT, pairs=st.sampled_from([4_000_000, 0]))
def test_runs_rebuild_both_texts_exactly(before: str, after: str, pairs: int) -> None:
    with patch("crdt.textdiff.CHARACTER_PAIRS", pairs):  # also when blocks are not compared
        found = runs(before, after)
        changes, _ = compare({"lyrics": before}, {"lyrics": after})
    assert "".join(r.text for r in found if r.op != "insert") == before
    assert "".join(r.text for r in found if r.op != "delete") == after
    assert all(r.text for r in found)
    assert all(a.op != b.op for a, b in pairwise(found))
    typed = sum(c.count for c in changes if c.kind == "lyrics.typed")
    deleted = sum(c.count for c in changes if c.kind == "lyrics.deleted")
    assert typed == sum(len(r.text) for r in found if r.op == "insert")
    assert deleted == sum(len(r.text) for r in found if r.op == "delete")


def test_lyrics_come_after_tracks_and_before_the_rest_whatever_the_roots_are_called() -> None:
    before = {"lyrics": "a", "tracks2": 1, "meta": {"bpm": 1}}
    after = {"lyrics": "b", "tracks2": 2, "meta": {"bpm": 2}}
    found, _ = compare(before, after)
    assert [c.path for c in found] == ["meta/bpm", "lyrics", "lyrics", "tracks2"]
