"""An analysis written into a document (jacameno.documents.analysis): the tracks that play the
asset take it, others not; an older or repeated result changes nothing."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map

from jacameno.documents.analysis import set_analysis, summary

RESULT = {
    "duration": 12.0,
    "tempo": {"bpm": 128.0, "confidence": 0.9},
    "key": {"name": "A minor", "confidence": 0.8},
    "loudness": {"integrated": -14.2, "range": 5.1},
    "true_peak": -1.2,
    "beats": [0.0, 0.47],
}


def _studio() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    tracks = doc.get("tracks", type=Array)
    for track_id, asset in (("t1", "a1"), ("t2", "a2"), ("t3", "a1")):
        clips = Array([Map({"id": f"c-{track_id}", "asset_id": asset})])
        tracks.append(Map({"id": track_id, "clips": clips}))
    return doc


def _analyses(doc: Doc[Any]) -> dict[str, Any]:
    return {t["id"]: t.get("analysis") for t in doc.get("tracks", type=Array).to_py()}


def test_the_tracks_that_play_the_asset_take_its_summary() -> None:
    doc = _studio()
    set_analysis(doc, "a1", summary(RESULT, asset_id="a1", job_id="j1", position=10))
    found = _analyses(doc)
    assert found["t2"] is None
    assert found["t1"] == found["t3"]
    assert found["t1"] == {
        "tempo_bpm": 128.0,
        "tempo_confidence": 0.9,
        "key": "A minor",
        "key_confidence": 0.8,
        "loudness_lufs": -14.2,
        "loudness_range_lu": 5.1,
        "true_peak_dbtp": -1.2,
        "duration": 12.0,
        "asset_id": "a1",
        "job_id": "j1",
        "position": 10,
    }


def test_an_older_or_repeated_result_changes_nothing() -> None:
    doc = _studio()
    set_analysis(doc, "a1", summary(RESULT, asset_id="a1", job_id="new", position=20))
    before = doc.get_state()
    set_analysis(doc, "a1", summary(RESULT, asset_id="a1", job_id="new", position=20))
    set_analysis(doc, "a1", summary(RESULT, asset_id="a1", job_id="old", position=5))
    assert doc.get_state() == before
    assert _analyses(doc)["t1"]["job_id"] == "new"
