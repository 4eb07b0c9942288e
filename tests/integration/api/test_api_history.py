"""`GET /api/projects/{id}/state` and `/history`: members read a project as it stood at a version
or a moment and its history in words; viewers too; to anyone else the project does not exist, and
no version or path reaches another project's log."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from pycrdt import Array, Doc, Map, Text

from domain.events import stream_name
from jacameno.settings import Settings
from projections.blame import blame
from projections.blame_checkpoints import Checkpoints
from tests.integration.api.support import Api, Member, running

BINARY = {"Content-Type": "application/octet-stream"}


async def _edit(api: Api, who: Member, project: str, doc: Doc[Any], change: Any) -> int:
    """Apply `change` to `doc` and send the update as `who`'s edit; the version it took."""
    before = doc.get_state()
    change(doc)
    answer = await api.client.post(
        f"/api/projects/{project}/updates",
        content=doc.get_update(before),
        headers={**who.headers, **BINARY},
    )
    assert answer.status_code == 200, answer.text
    version: int = answer.json()["version"]
    return version


async def _song(api: Api) -> tuple[Member, str, list[int]]:
    owner = await api.member("owner")
    project = (await api.project(owner, "Song"))["id"]
    doc: Doc[Any] = Doc()
    versions = [
        await _edit(
            api,
            owner,
            project,
            doc,
            lambda d: d.get("tracks", type=Array).append(
                Map({"id": "t1", "name": "Bass", "volume_db": -3})
            ),
        ),
        await _edit(
            api, owner, project, doc, lambda d: d["tracks"][0].__setitem__("volume_db", -6)
        ),
        await _edit(api, owner, project, doc, lambda d: d.__setitem__("lyrics", Text("hey"))),
    ]
    return owner, project, versions


async def test_the_state_at_a_version_is_the_document_then(api: Api) -> None:
    owner, project, versions = await _song(api)
    url = f"/api/projects/{project}/state"
    then = await api.client.get(url, params={"version": versions[1]}, headers=owner.headers)
    assert then.status_code == 200
    body = then.json()
    assert body["version"] == versions[1]
    assert body["recorded_at"] is not None
    assert body["document"]["tracks"] == [{"id": "t1", "name": "Bass", "volume_db": -6.0}]
    assert body["document"]["lyrics"] == ""
    now = (await api.client.get(url, headers=owner.headers)).json()
    assert (now["version"], now["document"]["lyrics"]) == (versions[2], "hey")
    at = await api.client.get(url, params={"at": body["recorded_at"]}, headers=owner.headers)
    assert at.json()["version"] >= versions[1]
    empty = await api.client.get(url, params={"version": 0}, headers=owner.headers)
    assert empty.json()["document"] == {
        "meta": {},
        "tracks": [],
        "lyrics": "",
        "comments": [],
        "markers": [],
    }


async def test_the_state_as_one_yjs_update_opens_in_any_client(api: Api) -> None:
    owner, project, versions = await _song(api)
    answer = await api.client.get(
        f"/api/projects/{project}/state",
        params={"version": versions[0], "format": "yjs"},
        headers=owner.headers,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-jacameno-version"] == str(versions[0])
    doc: Doc[Any] = Doc()
    doc.apply_update(answer.content)
    assert doc.get("tracks", type=Array).to_py() == [
        {"id": "t1", "name": "Bass", "volume_db": -3.0}
    ]


async def test_bad_points_are_refused_and_name_the_parameter(api: Api) -> None:
    owner, project, versions = await _song(api)
    url = f"/api/projects/{project}/state"

    async def get(**params: Any) -> tuple[int, Any]:
        answer = await api.client.get(url, params=params, headers=owner.headers)
        return answer.status_code, answer.json()["error"]

    status, error = await get(version=versions[-1] + 1)
    assert (status, error["code"], error["details"]) == (404, "version_not_found", ["version"])
    status, error = await get(version=1, at="2026-01-01T00:00:00Z")
    assert (status, error["code"], error["details"]) == (400, "bad_parameter", ["at"])
    status, error = await get(at="yesterday")
    assert status == 422
    assert "at" in str(error["details"])
    status, error = await get(version="two")
    assert status == 422
    assert "version" in str(error["details"])
    status, error = await get(format="xml")
    assert status == 422
    assert "format" in str(error["details"])


async def test_history_reads_every_event_with_what_it_changed(api: Api) -> None:
    owner, project, versions = await _song(api)
    url = f"/api/projects/{project}/history"
    page = (await api.client.get(url, headers=owner.headers)).json()
    entries = page["entries"]
    assert [e["type"] for e in entries[:2]] == ["project.created", "member.added"]
    edits = [e for e in entries if e["type"] == "doc.updated"]
    assert [e["version"] for e in edits] == versions
    assert edits[0]["summary"] == ["added track Bass"]
    assert edits[1]["summary"] == ["set Bass volume from -3 dB to -6 dB"]
    assert edits[1]["changes"] == [
        {
            "kind": "track.volume_db",
            "path": "tracks/t1/volume_db",
            "summary": "set Bass volume from -3 dB to -6 dB",
        }
    ]
    assert edits[2]["summary"] == ["typed 3 characters in lyrics"]
    assert all(e["user_id"] == owner.id for e in entries)
    assert page["next_after"] is None
    volume = await api.client.get(
        url, params={"path": "tracks/t1/volume_db"}, headers=owner.headers
    )
    assert [e["version"] for e in volume.json()["entries"]] == versions[0:2]
    paged = (await api.client.get(url, params={"limit": 2}, headers=owner.headers)).json()
    assert (len(paged["entries"]), paged["next_after"]) == (2, 2)
    rest = await api.client.get(url, params={"after": 2}, headers=owner.headers)
    assert rest.json()["entries"][0]["version"] == 3
    bad = await api.client.get(url, params={"path": "/lyrics"}, headers=owner.headers)
    assert bad.status_code == 422


async def test_viewers_read_and_strangers_see_no_project(api: Api) -> None:
    owner, project, versions = await _song(api)
    viewer, stranger = await api.member("viewer"), await api.member("stranger")
    await api.invite(owner, project, viewer, "viewer")
    for path in ("state", "history", "diff"):
        url = f"/api/projects/{project}/{path}"
        assert (await api.client.get(url, headers=viewer.headers)).status_code == 200
        hidden = await api.client.get(url, headers=stranger.headers)
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "not_found")
        assert (await api.client.get(url)).status_code == 401
    # The stranger's own project has fewer versions: its version numbers read only its own log.
    own = (await api.project(stranger, "Other"))["id"]
    answer = await api.client.get(
        f"/api/projects/{own}/state", params={"version": versions[-1]}, headers=stranger.headers
    )
    assert answer.status_code == 404
    history = await api.client.get(f"/api/projects/{own}/history", headers=stranger.headers)
    assert {e["user_id"] for e in history.json()["entries"]} == {stranger.id}
    answer = await api.client.get(
        f"/api/projects/{own}/diff", params={"to": versions[-1]}, headers=stranger.headers
    )
    assert answer.status_code == 404
    mine = await api.client.get(f"/api/projects/{own}/diff", headers=stranger.headers)
    assert mine.json()["changes"] == []


async def test_a_diff_lists_what_changed_between_two_versions(api: Api) -> None:
    owner, project, versions = await _song(api)
    url = f"/api/projects/{project}/diff"
    answer = await api.client.get(
        url, params={"from": versions[0], "to": versions[2]}, headers=owner.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["project_id"] == project
    assert (body["from"]["version"], body["to"]["version"]) == (versions[0], versions[2])
    assert body["from"]["recorded_at"] is not None
    assert body["changes"] == [
        {
            "kind": "track.volume_db",
            "path": "tracks/t1/volume_db",
            "summary": "set Bass volume from -3 dB to -6 dB",
            "before": -3.0,
            "after": -6.0,
        },
        {
            "kind": "lyrics.typed",
            "path": "lyrics",
            "summary": "typed 3 characters in lyrics",
            "before": None,
            "after": None,
        },
    ]
    assert body["lyrics"] == [{"op": "insert", "text": "hey"}]
    # Backwards: what turns the head into version 0. Without parameters: from 0 to the head.
    back = (
        await api.client.get(url, params={"from": versions[2], "to": 0}, headers=owner.headers)
    ).json()
    assert [c["kind"] for c in back["changes"]] == ["track.deleted", "lyrics.deleted"]
    assert back["changes"][0]["before"] == {"id": "t1", "name": "Bass", "volume_db": -6.0}
    whole = (await api.client.get(url, headers=owner.headers)).json()
    assert (whole["from"]["version"], whole["to"]["version"]) == (0, versions[2])
    assert whole["from"]["recorded_at"] is None


async def test_a_diff_refuses_versions_beyond_the_head_and_bad_ones(api: Api) -> None:
    owner, project, versions = await _song(api)
    url = f"/api/projects/{project}/diff"

    async def get(**params: Any) -> tuple[int, Any]:
        answer = await api.client.get(url, params=params, headers=owner.headers)
        return answer.status_code, answer.json()["error"]

    beyond = versions[-1] + 1
    status, error = await get(**{"from": beyond, "to": 1})
    assert (status, error["code"], error["details"]) == (404, "version_not_found", ["from"])
    status, error = await get(**{"from": 1, "to": beyond})
    assert (status, error["code"], error["details"]) == (404, "version_not_found", ["to"])
    status, error = await get(**{"from": "two"})
    assert status == 422
    assert "from" in str(error["details"])
    status, error = await get(to=-1)
    assert status == 422
    assert "to" in str(error["details"])


async def test_blame_names_who_wrote_the_lyrics_and_set_each_mixer_value(api: Api) -> None:
    owner, project, versions = await _song(api)
    editor = await api.member("editor")
    await api.invite(owner, project, editor, "editor")
    doc: Doc[Any] = Doc()
    state = await api.client.get(
        f"/api/projects/{project}/state", params={"format": "yjs"}, headers=owner.headers
    )
    doc.apply_update(state.content)
    typed = await _edit(
        api, editor, project, doc, lambda d: d.get("lyrics", type=Text).insert(0, "oh ")
    )
    panned = await _edit(
        api, editor, project, doc, lambda d: d.get("tracks", type=Array)[0].__setitem__("pan", 1)
    )
    url = f"/api/projects/{project}/blame"
    lyrics = (await api.client.get(url, headers=owner.headers)).json()
    assert (lyrics["version"], lyrics["path"]) == (panned, "lyrics")
    assert lyrics["recorded_at"] is not None
    assert lyrics["runs"] == [
        {"text": "oh ", "user_id": editor.id, "version": typed},
        {"text": "hey", "user_id": owner.id, "version": versions[2]},
    ]
    before = await api.client.get(url, params={"version": versions[2]}, headers=owner.headers)
    assert before.json()["runs"] == [{"text": "hey", "user_id": owner.id, "version": versions[2]}]
    track = await api.client.get(url, params={"path": "tracks/t1"}, headers=owner.headers)
    assert track.status_code == 200, track.text
    body = track.json()
    assert (body["track_id"], body["path"], body["version"]) == ("t1", "tracks/t1", panned)
    shown = {k: (v["value"], v["user_id"], v["version"]) for k, v in body["values"].items()}
    assert shown == {
        "name": ("Bass", owner.id, versions[0]),
        "volume_db": (-6.0, owner.id, versions[1]),
        "pan": (1.0, editor.id, panned),
    }
    assert body["values"]["pan"]["recorded_at"] is not None


async def test_blame_refuses_bad_paths_unknown_tracks_and_versions_beyond_the_head(
    api: Api,
) -> None:
    owner, project, versions = await _song(api)
    viewer, stranger = await api.member("viewer"), await api.member("stranger")
    await api.invite(owner, project, viewer, "viewer")
    url = f"/api/projects/{project}/blame"

    async def get(who: Member, **params: Any) -> tuple[int, Any]:
        answer = await api.client.get(url, params=params, headers=who.headers)
        return answer.status_code, answer.json()

    status, body = await get(viewer, path="tracks/t1", version=versions[0])
    assert (status, body["values"]["volume_db"]["value"]) == (200, -3.0)
    status, body = await get(stranger)
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert (await api.client.get(url)).status_code == 401
    for bad in ("meta/bpm", "tracks", "tracks/t1/volume_db"):
        status, body = await get(owner, path=bad)
        assert (status, body["error"]["code"], body["error"]["details"]) == (
            400,
            "bad_parameter",
            ["path"],
        )
    status, body = await get(owner, path="tracks/nope")
    assert (status, body["error"]["code"], body["error"]["details"]) == (
        404,
        "track_not_found",
        ["path"],
    )
    status, body = await get(owner, path="tracks/t1", version=0)
    assert (status, body["error"]["code"]) == (404, "track_not_found")
    status, body = await get(owner, version=versions[-1] + 100)
    assert (status, body["error"]["code"], body["error"]["details"]) == (
        404,
        "version_not_found",
        ["version"],
    )
    status, body = await get(owner, version="two")
    assert status == 422
    assert "version" in str(body["error"]["details"])
    status, body = await get(owner, path="/lyrics")
    assert status == 422


async def test_blame_passes_over_a_damaged_checkpoint_and_one_of_another_project(
    api: Api,
) -> None:
    owner, project, versions = await _song(api)
    _, other, made = await _song(api)
    state = await api.client.get(
        f"/api/projects/{other}/state", params={"format": "yjs"}, headers=owner.headers
    )
    assert state.status_code == 404  # not a member of the other project
    core = api.services.core
    theirs, ours = stream_name(other), stream_name(project)
    await blame(core.store, theirs, made[2], Checkpoints(core.db, every=1))
    # theirs copied under our key at our lyrics' version, garbage at the one before
    await core.db.execute(
        "INSERT INTO blame_checkpoints (stream, version, format, size, data, saved_at)"
        " SELECT $1, version, format, size, data, saved_at FROM blame_checkpoints"
        " WHERE stream = $2 AND version = $3",
        ours,
        theirs,
        made[2],
    )
    await core.db.execute(
        "INSERT INTO blame_checkpoints (stream, version, format, size, data, saved_at)"
        " VALUES ($1, $2, 1, 4, $3, 0)",
        ours,
        versions[1],
        b"junk",
    )
    listed = await core.db.fetch("SELECT version FROM blame_checkpoints WHERE stream = $1", ours)
    assert sorted(row[0] for row in listed) == [versions[1], made[2]]
    assert made[2] == versions[2]
    url = f"/api/projects/{project}/blame"
    answer = await api.client.get(url, params={"version": versions[2]}, headers=owner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["runs"] == [{"text": "hey", "user_id": owner.id, "version": versions[2]}]
    track = await api.client.get(url, params={"path": "tracks/t1"}, headers=owner.headers)
    assert track.json()["values"]["volume_db"]["user_id"] == owner.id
    left = await core.db.fetch("SELECT version FROM blame_checkpoints WHERE stream = $1", ours)
    assert left == []  # both refused, and deleted


async def test_a_long_first_blame_answers_202_until_prepared_in_the_background(
    api_config: Settings,
) -> None:
    settings = dataclasses.replace(api_config, blame_background_above=2)
    async with running(settings) as api:
        owner, project, versions = await _song(api)
        url = f"/api/projects/{project}/blame"
        short = await api.client.get(url, params={"version": 2}, headers=owner.headers)
        assert short.status_code == 200  # 2 updates to replay: waited for
        first = await api.client.get(url, headers=owner.headers)
        assert first.status_code == 202, first.text
        body = first.json()
        assert body == {
            "project_id": project,
            "status": "preparing",
            "version": versions[2],
            "retry_after": 1,
        }
        assert first.headers["Retry-After"] == "1"
        stream = stream_name(project)
        await asyncio.wait_for(api.services.blames.prepared(stream), 30)
        ready = await api.client.get(url, headers=owner.headers)
        assert ready.status_code == 200, ready.text
        assert ready.json()["runs"] == [
            {"text": "hey", "user_id": owner.id, "version": versions[2]}
        ]
