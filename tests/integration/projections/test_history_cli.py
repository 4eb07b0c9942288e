"""`jacameno replay` and `jacameno history`, in process, on SQLite and Postgres: a project's
document at a version or moment, and its history in words, read from the log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from domain.events import DOC_UPDATED, stream_name
from eventstore import NewEvent
from harness.databases import open_store
from jacameno import cli


async def _song(database_url: str) -> str:
    """A project of three edits by ana, bob, ana: a title, a tempo, lyrics."""
    project = str(uuid.uuid4())
    doc: Doc[Any] = Doc()
    store = await open_store(database_url)
    try:
        edits: list[tuple[str, Callable[[], object]]] = [
            ("ana", lambda: doc.get("meta", type=Map).__setitem__("title", "Song")),
            ("bob", lambda: doc.get("meta", type=Map).__setitem__("bpm", 90)),
            ("ana", lambda: doc.get("lyrics", type=Text).__iadd__("la la")),
        ]
        for user, edit in edits:
            before = doc.get_state()
            edit()
            event = NewEvent(DOC_UPDATED, doc.get_update(before), {"user_id": user})
            await store.append(stream_name(project), [event])
    finally:
        await store.close()
    return project


def test_replay_prints_the_document_at_a_version_or_writes_it_as_yjs(
    database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = asyncio.run(_song(database_url))
    base = ["replay", project, "--database-url", database_url]
    assert cli.main([*base, "--version", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["document"]["meta"]) == (2, {"title": "Song", "bpm": 90.0})
    assert cli.main([*base, "--at", "2000-01-01T00:00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 0
    target = tmp_path / "song.yjs"
    assert cli.main([*base, "--version", "3", "--yjs", str(target)]) == 0
    doc: Doc[Any] = Doc()
    doc.apply_update(target.read_bytes())
    assert str(doc.get("lyrics", type=Text)) == "la la"
    assert cli.main([*base, "--version", "4"]) == 1
    assert "beyond the project's head (version 3)" in capsys.readouterr().err


def test_replay_refuses_a_bad_project_or_point(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as bad_id:
        cli.main(["replay", "nope", "--version", "1", "--database-url", database_url])
    assert bad_id.value.code == 2
    assert "not a project id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["replay", str(uuid.uuid4()), "--at", "soon", "--database-url", database_url])
    assert "not an ISO 8601 date and time" in capsys.readouterr().err


def test_history_prints_each_event_in_words_and_filters(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(_song(database_url))
    base = ["history", project, "--database-url", database_url]
    assert cli.main(base) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[-2:] for line in lines] == [
        ["ana", 'set the title to "Song"'],
        ["bob", "set the tempo to 90 BPM"],
        ["ana", "typed 5 characters in lyrics"],
    ]
    assert cli.main([*base, "--user", "ana", "--path", "lyrics", "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["version"], e["changes"][0]["path"]) for e in entries] == [(3, "lyrics")]


def test_diff_prints_what_changed_between_two_versions(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(_song(database_url))
    base = ["diff", project, "--database-url", database_url]
    assert cli.main([*base, "1", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "version 1 -> 3",
        "  set the tempo to 90 BPM",
        "  typed 5 characters in lyrics",
        '  lyrics + at 0: "la la"',
    ]
    assert cli.main([*base, "3", "0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["from"]["version"], shown["to"]["version"]) == (3, 0)
    assert [c["summary"] for c in shown["changes"]][:2] == [
        "cleared the tempo",
        "cleared the title",
    ]
    assert shown["changes"][1] == {
        "kind": "meta.title",
        "path": "meta/title",
        "summary": "cleared the title",
        "before": "Song",
        "after": None,
    }
    assert shown["lyrics"] == [{"op": "delete", "text": "la la"}]
    assert cli.main([*base, "1", "4"]) == 1
    assert "beyond the project's head (version 3)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        cli.main([*base, "one", "2"])
    assert bad.value.code == 2
    assert "not a version" in capsys.readouterr().err


def test_blame_prints_who_wrote_the_lyrics_and_set_a_tracks_values(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(_song(database_url))

    async def mix() -> None:
        store = await open_store(database_url)
        try:
            doc: Doc[Any] = Doc()
            before = doc.get_state()
            doc.get("tracks", type=Array).append(Map({"id": "t1", "name": "Bass", "pan": 0.5}))
            event = NewEvent(DOC_UPDATED, doc.get_update(before), {"user_id": "bob"})
            await store.append(stream_name(project), [event])
        finally:
            await store.close()

    asyncio.run(mix())
    base = ["blame", project, "--database-url", database_url]
    assert cli.main(base) == 0
    assert capsys.readouterr().out.splitlines() == ["version 4", '      3  ana  "la la"']
    assert cli.main([*base, "--path", "tracks/t1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["project_id"], shown["track_id"], shown["version"]) == (project, "t1", 4)
    assert shown["values"]["pan"] | {"recorded_at": None} == {
        "value": 0.5,
        "user_id": "bob",
        "version": 4,
        "recorded_at": None,
    }
    assert cli.main([*base, "--path", "tracks/t1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "version 4",
        '  name  "Bass"  4  bob',
        "  pan  0.5  4  bob",
    ]
    assert cli.main([*base, "--version", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    assert cli.main([*base, "--path", "tracks/t1", "--version", "3"]) == 1
    assert "no tracks/t1 at version 3" in capsys.readouterr().err
    assert cli.main([*base, "--version", "5"]) == 1
    assert "beyond the project's head (version 4)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        cli.main([*base, "--path", "meta/bpm"])
    assert bad.value.code == 2
    assert "lyrics or tracks/<track id>" in capsys.readouterr().err
