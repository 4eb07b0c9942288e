"""What a restore covers (jacameno.documents.service): paths, and one item of an Array root put
back as it was while the rest of the document keeps its later edits."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from domain import document
from jacameno.documents.service import BadPath, Part, parse_path, restore_part


def studio() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    tracks = doc.get("tracks", type=Array)
    for track_id, name in (("t1", "Drums"), ("t2", "Bass"), ("t3", "Keys")):
        tracks.append(Map({"id": track_id, "name": name, "volume_db": 0.0}))
    doc.get("lyrics", type=Text).insert(0, "verse")
    doc.get("meta", type=Map)["title"] = "Song"
    return doc


def fork(doc: Doc[Any]) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy


@pytest.mark.parametrize(
    ("path", "part"),
    [
        (None, Part()),
        ("lyrics", Part("lyrics")),
        ("meta", Part("meta")),
        ("tracks/t1", Part("tracks", "t1")),
        ("comments/c-9", Part("comments", "c-9")),
    ],
)
def test_paths_name_the_whole_document_a_root_or_one_item(path: str | None, part: Part) -> None:
    assert parse_path(path) == part
    assert part.path == path


@pytest.mark.parametrize("path", ["nope", "lyrics/x", "meta/title", "tracks/", "tracks/a/b", ""])
def test_other_paths_are_refused(path: str) -> None:
    with pytest.raises(BadPath):
        parse_path(path)


def test_one_track_is_put_back_while_the_others_keep_their_edits() -> None:
    then = studio()
    now = fork(then)
    tracks = now.get("tracks", type=Array)
    tracks[0]["volume_db"] = -6.0  # Drums changed: restored
    tracks[2]["volume_db"] = -3.0  # Keys changed: kept
    del tracks[1]  # Bass removed: comes back between them
    tracks.append(Map({"id": "t4", "name": "Vox", "volume_db": 0.0}))
    now.get("lyrics", type=Text).insert(5, " chorus")
    for item in ("t1", "t2"):
        restore_part(now, then, Part("tracks", item))
    restored = document.read(now)
    assert [(t["id"], t["volume_db"]) for t in restored["tracks"]] == [
        ("t1", 0.0),
        ("t2", 0.0),
        ("t3", -3.0),
        ("t4", 0.0),
    ]
    assert restored["lyrics"] == "verse chorus"
    restore_part(now, then, Part("tracks", "t4"))  # not there then: removed
    assert [t["id"] for t in document.read(now)["tracks"]] == ["t1", "t2", "t3"]


def test_one_root_is_put_back_and_the_others_are_left_alone() -> None:
    then = studio()
    now = fork(then)
    now.get("lyrics", type=Text).insert(0, "intro ")
    now.get("meta", type=Map)["title"] = "Renamed"
    restore_part(now, then, Part("lyrics"))
    assert document.read(now)["lyrics"] == "verse"
    assert document.read(now)["meta"]["title"] == "Renamed"
    restore_part(now, then, Part())
    assert document.read(now) == document.read(then)
