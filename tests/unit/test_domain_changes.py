"""What an update changed, in the studio's words: one known answer per kind of edit."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map, Text

from domain.changes import Change, changes, event_summary, touches, typing_total
from domain.document import plain


def _doc() -> dict[str, Any]:
    return {
        "meta": {"title": "Night Ride", "bpm": 120.0, "key": "C"},
        "tracks": [
            {
                "id": "t1",
                "name": "Drums",
                "volume_db": 0.0,
                "pan": 0.0,
                "muted": False,
                "solo": False,
                "clips": [{"id": "Intro", "start": 4.0, "length": 2.0, "gain_db": 0.0}],
            },
            {"id": "t2", "name": "", "volume_db": -3.0},
            {"id": "t3", "name": "Vocals", "volume_db": -3.0},
        ],
        "lyrics": "la la\n",
        "comments": [{"id": "c1", "text": "louder", "resolved": False, "at": 3.0}],
        "markers": [{"id": "m1", "name": "Chorus", "at": 32.0}],
    }


def _said(edit: Callable[[dict[str, Any]], None]) -> list[tuple[str, str]]:
    before = _doc()
    after = copy.deepcopy(before)
    edit(after)
    return [(c.path, c.summary) for c in changes(before, after)]


def test_adding_a_track_names_it() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["tracks"].append({"id": "t4", "name": "Bass"})

    assert _said(edit) == [("tracks/t4", "added track Bass")]


def test_a_track_without_a_name_is_named_by_its_position() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["tracks"][1]["name"] = "Vocals"

    assert _said(edit) == [("tracks/t2/name", "renamed track 2 to Vocals")]


def test_deleting_and_reordering_tracks() -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["tracks"][1]
        d["tracks"].reverse()

    assert _said(edit) == [("tracks/t2", "deleted track 2"), ("tracks", "reordered tracks")]


def test_a_clip_moved_on_its_track_says_from_where_to_where() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["tracks"][0]["clips"][0]["start"] = 8.0

    assert _said(edit) == [
        ("tracks/t1/clips/Intro/start", "moved clip Intro on Drums from 4.0 s to 8.0 s")
    ]


def test_clips_added_resized_and_deleted() -> None:
    def edit(d: dict[str, Any]) -> None:
        clips = d["tracks"][0]["clips"]
        clips[0]["length"] = 2.5
        clips.append({"id": "Outro", "start": 60})

    assert _said(edit) == [
        ("tracks/t1/clips/Intro/length", "resized clip Intro on Drums from 2.0 s to 2.5 s"),
        ("tracks/t1/clips/Outro", "added clip Outro on Drums at 60.0 s"),
    ]

    def remove(d: dict[str, Any]) -> None:
        d["tracks"][0]["clips"].clear()

    assert _said(remove) == [("tracks/t1/clips/Intro", "deleted clip Intro on Drums")]


def test_mixer_values_say_old_and_new() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["tracks"][2]["volume_db"] = -6.0
        d["tracks"][0]["pan"] = -0.5
        d["tracks"][0]["muted"] = True
        d["tracks"][0]["solo"] = True

    assert _said(edit) == [
        ("tracks/t1/pan", "set Drums pan from 0 to -0.5"),
        ("tracks/t1/muted", "muted Drums"),
        ("tracks/t1/solo", "soloed Drums"),
        ("tracks/t3/volume_db", "set Vocals volume from -3 dB to -6 dB"),
    ]


def test_meta_tempo_key_and_title() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["meta"].update(bpm=128.0, key="A minor", title="Day Ride", time_signature="3/4")

    assert _said(edit) == [
        ("meta/bpm", "set the tempo from 120 to 128 BPM"),
        ("meta/key", "set the key from C to A minor"),
        ("meta/time_signature", "set the time signature to 3/4"),
        ("meta/title", 'renamed the project from "Night Ride" to "Day Ride"'),
    ]


def test_typing_and_deleting_in_lyrics_count_characters() -> None:
    def typed(d: dict[str, Any]) -> None:
        d["lyrics"] = "la la\nhello world!\n"

    def deleted(d: dict[str, Any]) -> None:
        d["lyrics"] = "la\n"

    def one(d: dict[str, Any]) -> None:
        d["lyrics"] = "la lax\n"

    assert _said(typed) == [("lyrics", "typed 13 characters in lyrics")]
    assert _said(deleted) == [("lyrics", "deleted 3 characters in lyrics")]
    assert _said(one) == [("lyrics", "typed 1 character in lyrics")]


def test_comments_added_resolved_and_deleted() -> None:
    def on_track(d: dict[str, Any]) -> None:
        d["comments"].append({"id": "c2", "text": "nice", "track_id": "t1"})

    def resolved(d: dict[str, Any]) -> None:
        d["comments"][0]["resolved"] = True

    def at_time(d: dict[str, Any]) -> None:
        d["comments"].append({"id": "c3", "text": "here", "at": 12.5})

    assert _said(on_track) == [("comments/c2", "commented on Drums")]
    assert _said(resolved) == [("comments/c1/resolved", "resolved a comment")]
    assert _said(at_time) == [("comments/c3", "commented at 12.5 s")]
    assert _said(lambda d: d["comments"].clear()) == [("comments/c1", "deleted a comment")]


def test_markers_added_moved_and_renamed() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["markers"][0].update(at=36.0, name="Hook")
        d["markers"].append({"name": "Bridge", "at": 64.0})

    assert _said(edit) == [
        ("markers/m1/name", "renamed marker Chorus to marker Hook"),
        ("markers/m1/at", "moved marker Hook from 32.0 s to 36.0 s"),
        ("markers/1", "added marker Bridge at 64.0 s"),
    ]


def test_roots_outside_the_schema_are_named() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["chat"] = ["hi"]

    assert _said(edit) == [("chat", "changed chat")]


def test_a_root_outside_the_schema_changes_by_its_keys_or_positions() -> None:
    log = [f"line {n}" for n in range(1000)]
    before: dict[str, Any] = {"chat": list(log), "plugin": {"a": 1, "b": None, "big": log}}
    before["note"] = "x"
    after = copy.deepcopy(before)
    after["chat"].append("hello")  # a push: the new item alone, not the chat twice
    after["plugin"]["a"] = 2
    del after["plugin"]["b"]  # a key whose value was null, removed
    after["plugin"]["c"] = None  # a key added with a null value
    after["note"] = "y"
    found = [(c.path, c.summary, c.before, c.after) for c in changes(before, after)]
    assert found == [
        ("chat/1000", "changed chat", None, ["hello"]),
        ("note", "changed note", "x", "y"),
        ("plugin/a", "changed plugin", 1, 2),
        ("plugin/b", "changed plugin", None, None),
        ("plugin/c", "changed plugin", None, None),
    ]
    deleted, replaced = copy.deepcopy(before), copy.deepcopy(before)
    del deleted["chat"][10:12]
    replaced["chat"][500] = "edited"
    assert [(c.path, c.before, c.after) for c in changes(before, deleted)] == [
        ("chat/10", ["line 10", "line 11"], None)
    ]
    assert [(c.path, c.before, c.after) for c in changes(before, replaced)] == [
        ("chat/500", ["line 500"], ["edited"])
    ]


def test_nothing_changed_says_nothing_and_garbage_does_not_raise() -> None:
    assert changes(_doc(), _doc()) == []
    garbage: dict[str, Any] = {"meta": [1], "tracks": {"x": 1}, "lyrics": 3, "comments": [7]}
    assert [c.path for c in changes(garbage, _doc())] == [
        "meta/bpm",
        "meta/key",
        "meta/title",
        "tracks/t1",
        "tracks/t2",
        "tracks/t3",
        "lyrics",
        "comments/c1",
        "markers/m1",
    ]
    assert [c.summary for c in changes(_doc(), garbage)][:2] == [
        "cleared the tempo",
        "cleared the key",
    ]


def test_a_path_touches_what_is_inside_it_and_what_contains_it() -> None:
    assert touches("tracks/t1/volume_db", "tracks/t1")
    assert touches("tracks/t1", "tracks/t1/volume_db")
    assert touches("lyrics", "lyrics")
    assert not touches("tracks/t10", "tracks/t1")
    assert not touches("comments/c1", "lyrics")


def test_keystrokes_add_up() -> None:
    found = [
        Change("lyrics.typed", "lyrics", "", 3),
        Change("lyrics.typed", "lyrics", "", 2),
        Change("lyrics.deleted", "lyrics", "", 1),
    ]
    assert [c.summary for c in typing_total(found)] == [
        "typed 5 characters in lyrics",
        "deleted 1 character in lyrics",
    ]


def test_a_real_document_reads_and_compares() -> None:
    doc: Doc[Any] = Doc()
    doc["meta"] = Map({"title": "Song"})
    doc["tracks"] = Array([Map({"id": "t1", "name": "Bass", "volume_db": -3})])
    doc["lyrics"] = Text("")
    before = plain(doc)
    tracks: Array[Any] = doc["tracks"]
    tracks[0]["volume_db"] = -6
    lyrics: Text = doc["lyrics"]
    lyrics += "hello"
    assert [c.summary for c in changes(before, plain(doc))] == [
        "set Bass volume from -3 dB to -6 dB",
        "typed 5 characters in lyrics",
    ]


def test_other_events_read_as_sentences() -> None:
    assert event_summary("member.added", {"user_id": "u1", "role": "editor"}) == (
        "added member u1 as editor"
    )
    assert event_summary("session.left", {"seconds": 61.2}) == "left after 61 s"
    assert event_summary("asset.uploaded", {}) == "asset.uploaded"


def test_a_restore_names_the_version_and_the_part() -> None:
    whole = {"version": 4, "path": None, "update_version": 9}
    assert event_summary("doc.restored", whole) == "restored version 4"
    part = {"version": 4, "path": "tracks/t1", "update_version": 9}
    assert event_summary("doc.restored", part) == "restored tracks/t1 to version 4"
    same = {"version": 4, "path": None, "update_version": None}
    assert event_summary("doc.restored", same) == "restored version 4 (nothing differed)"


def test_clips_that_share_an_id_are_told_as_a_change_of_the_tracks_clips() -> None:
    # Two clients added a clip of one id at once; the second one then moved.
    clips = [{"id": "k0", "start": 0.0}, {"id": "k0", "start": 1.0}]
    before = {"tracks": [{"id": "t", "name": "Drums", "clips": clips}]}
    moved = [clips[0], {"id": "k0", "start": 2.0}]
    after = {"tracks": [{"id": "t", "name": "Drums", "clips": moved}]}
    found = changes(before, after)
    assert [(c.kind, c.path, c.summary) for c in found] == [
        ("clips.changed", "tracks/t/clips", "changed the clips on Drums")
    ]
    assert (found[0].before, found[0].after) == (clips, moved)
    assert changes(before, copy.deepcopy(before)) == []
