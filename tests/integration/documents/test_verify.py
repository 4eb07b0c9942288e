"""`jacameno verify`, in process, on SQLite and Postgres: a clean log passes; a snapshot that
disagrees with the log, a gap in a stream's versions, or an update that is not one fail it, each
named in the report; the exit code is the verdict."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt import UpdateSummary, check_update
from domain import events
from harness.databases import open_store
from jacameno import cli
from sqldb import open_database


def edits(count: int) -> list[bytes]:
    """`count` updates of one client: lyrics typed, a track added, its volume set again."""
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    lyrics = doc.get("lyrics", type=Text)
    tracks = doc.get("tracks", type=Array)
    for i in range(count):
        if i == 1:
            tracks.append(Map({"id": "t1", "name": "Bass", "volume_db": 0.0}))
        elif i % 3 == 0 and i > 1:
            tracks[0]["volume_db"] = float(-i)
        else:
            lyrics.insert(len(lyrics), f"line {i} ")
    return updates


def updated(update: bytes) -> Any:
    summary: UpdateSummary = check_update(update)
    return events.doc_updated(update, summary, user_id="u1", node="test")


async def project_with_snapshots(url: str, count: int, at: tuple[int, ...]) -> str:
    """A project of `count` updates with a true snapshot at each version of `at`."""
    project = str(uuid.uuid4())
    stream = events.stream_name(project)
    store = await open_store(url)
    try:
        doc: Doc[Any] = Doc()
        for version, update in enumerate(edits(count), start=1):
            await store.append(stream, [updated(update)])
            doc.apply_update(update)
            if version in at:
                await store.save_snapshot(stream, version, doc.get_update())
    finally:
        await store.close()
    return project


async def tamper(url: str, project: str, version: int) -> None:
    """Store a wrong snapshot at `version`: the right one, plus an edit nobody logged."""
    stream = events.stream_name(project)
    store = await open_store(url)
    try:
        snapshot = await store.load_snapshot(stream, max_version=version)
        assert snapshot is not None
        doc: Doc[Any] = Doc()
        doc.apply_update(snapshot.state)
        doc.get("lyrics", type=Text).insert(0, "forged ")
        await store.save_snapshot(stream, version, doc.get_update())
    finally:
        await store.close()


def verify(url: str, *args: str) -> int:
    return cli.main(["verify", "--database-url", url, *args])


def test_a_clean_log_passes_with_a_line_per_project_and_a_summary(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = asyncio.run(project_with_snapshots(database_url, 12, (4, 9)))
    second = asyncio.run(project_with_snapshots(database_url, 3, ()))
    assert verify(database_url) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"ok    {first}  12 events, 12 updates, head 12, 2 snapshot(s)")
    assert out[1].startswith(f"ok    {second}  3 events")
    assert out[-1] == "2 project(s) verified, 0 with problems, 15 events read: all good"
    assert verify(database_url, first, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["log"] is None
    [project] = report["projects"]
    assert project["snapshots"] == [4, 9]
    assert project["problems"] == []


def test_a_tampered_snapshot_fails_with_a_report_naming_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(project_with_snapshots(database_url, 12, (4, 9)))
    clean = asyncio.run(project_with_snapshots(database_url, 5, (2,)))
    asyncio.run(tamper(database_url, project, 9))
    assert verify(database_url) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {project}" in out
    assert "snapshot at version 9 disagrees with the log: state vectors differ" in out
    assert "content differs in lyrics" in out
    assert "snapshot at version 4" not in out
    assert f"ok    {clean}" in out
    assert out.splitlines()[-1].endswith("1 with problems, 17 events read: something disagrees")
    assert verify(database_url, project, "--json") == 1
    [report] = json.loads(capsys.readouterr().out)["projects"]
    assert report["ok"] is False
    assert len(report["problems"]) == 1


def test_a_snapshot_that_is_not_a_document_fails(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(project_with_snapshots(database_url, 4, (2,)))

    async def garbage() -> None:
        store = await open_store(database_url)
        try:
            await store.save_snapshot(events.stream_name(project), 3, b"\x05\x01")
        finally:
            await store.close()

    asyncio.run(garbage())
    assert verify(database_url, project) == 1
    assert "snapshot at version 3: not a valid Yjs document" in capsys.readouterr().out


def test_an_unknown_project_is_a_usage_error(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(database_url, str(uuid.uuid4())) == 2
    assert "its stream has no events" in capsys.readouterr().err


async def tamper_log(url: str, sql: str, *args: Any) -> None:
    database = await open_database(url)
    try:
        await database.execute(sql, *args)
    finally:
        await database.close()


def test_a_missing_event_and_a_broken_update_fail_with_their_versions(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = asyncio.run(project_with_snapshots(database_url, 8, ()))
    stream = events.stream_name(project)
    delete = "DELETE FROM es_events WHERE stream = $1 AND version = $2"
    asyncio.run(tamper_log(database_url, delete, stream, 3))
    change = "UPDATE es_events SET data = $1 WHERE stream = $2 AND version = $3"
    asyncio.run(tamper_log(database_url, change, b"\x01\x01", stream, 6))
    assert verify(database_url) == 1
    out = capsys.readouterr().out
    assert "version 3 is missing" in out
    assert "version 6: not a valid Yjs update" in out
    assert "log: log positions jump from 2 to 4" in out
