"""Playlists and favorites through the API, embedded and on Postgres + Redis: only the owner
edits, a private playlist is the owner's alone, reordering and its refusals, favorites counted
once; and the catalog projection rebuilt from the log equals the live one."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, cast

from projections.catalog import TABLES
from tests.integration.api.catalog_support import asset, play, publish, settled, track
from tests.integration.api.support import Api, Member


async def tracks_of(api: Api, owner: Member, count: int) -> list[str]:
    project = await api.project(owner)
    mixdown = await asset(api, project["id"], owner)
    return [
        (await publish(api, owner, project["id"], mixdown, title=f"T{n}"))["id"]
        for n in range(count)
    ]


async def test_only_the_owner_edits_a_playlist_and_a_private_one_is_theirs(api: Api) -> None:
    owner, other = await api.member("owner"), await api.member("other")
    one, two, three = await tracks_of(api, owner, 3)
    created = await api.client.post("/api/playlists", json={"title": "Road"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    playlist = created.json()
    assert (playlist["public"], playlist["tracks"]) == (False, [])
    path = f"/api/playlists/{playlist['id']}"
    assert (await api.client.get(path)).status_code == 404
    assert (await api.client.get(path, headers=other.headers)).status_code == 404
    for track_id, index in ((one, None), (two, None), (three, 0)):
        body: dict[str, Any] = {"track_id": track_id}
        if index is not None:
            body["index"] = index
        added = await api.client.post(f"{path}/tracks", json=body, headers=owner.headers)
        assert added.status_code == 200, added.text
    assert [t["id"] for t in added.json()["tracks"]] == [three, one, two]
    again = await api.client.post(f"{path}/tracks", json={"track_id": one}, headers=owner.headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_in_playlist")
    missing = await api.client.post(
        f"{path}/tracks", json={"track_id": str(uuid.uuid4())}, headers=owner.headers
    )
    assert missing.status_code == 404

    public = await api.client.patch(
        path, json={"public": True, "title": "Road Trip"}, headers=owner.headers
    )
    assert public.status_code == 200
    seen = await api.client.get(path)
    assert (seen.json()["title"], seen.json()["public"]) == ("Road Trip", True)
    refused = await api.client.patch(path, json={"title": "Mine"}, headers=other.headers)
    assert refused.status_code == 403
    theirs = await api.client.post(f"{path}/tracks", json={"track_id": one}, headers=other.headers)
    assert theirs.status_code == 403

    reordered = await api.client.patch(
        path, json={"track_ids": [one, two, three]}, headers=owner.headers
    )
    assert [t["id"] for t in reordered.json()["tracks"]] == [one, two, three]
    for order in ([one, two], [one, one, two], [one, two, three, str(uuid.uuid4())]):
        bad = await api.client.patch(path, json={"track_ids": order}, headers=owner.headers)
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_order")
    removed = await api.client.delete(f"{path}/tracks/{two}", headers=owner.headers)
    assert removed.status_code == 204
    assert (
        await api.client.delete(f"{path}/tracks/{two}", headers=owner.headers)
    ).status_code == 404
    unpublished = await api.client.delete(f"/api/tracks/{three}", headers=owner.headers)
    assert unpublished.status_code == 204
    assert [t["id"] for t in (await api.client.get(path)).json()["tracks"]] == [one]

    listed = await api.client.get(f"/api/users/{owner.id}/playlists")
    assert [p["id"] for p in listed.json()["playlists"]] == [playlist["id"]]
    assert (await api.client.delete(path, headers=other.headers)).status_code == 403
    assert (await api.client.delete(path, headers=owner.headers)).status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert (
        await api.client.post("/api/playlists", json={"title": ""}, headers=owner.headers)
    ).status_code == 422


async def test_a_favorite_counts_once(api: Api) -> None:
    owner, fan = await api.member("owner"), await api.member("fan")
    (track_id,) = await tracks_of(api, owner, 1)
    path = f"/api/tracks/{track_id}/favorite"
    for _ in range(2):
        assert (await api.client.post(path, headers=fan.headers)).status_code == 204
    assert (await track(api, track_id))["favorites"] == 1
    mine = await api.client.get("/api/me/favorites", headers=fan.headers)
    assert [t["id"] for t in mine.json()["tracks"]] == [track_id]
    assert (await api.client.post(path)).status_code == 401
    for _ in range(2):
        assert (await api.client.delete(path, headers=fan.headers)).status_code == 204
    assert (await track(api, track_id))["favorites"] == 0
    unknown = await api.client.post(f"/api/tracks/{uuid.uuid4()}/favorite", headers=fan.headers)
    assert unknown.status_code == 404


async def catalog_rows(api: Api) -> dict[str, list[tuple[object, ...]]]:
    db = api.services.core.db
    result = {}
    for table in TABLES:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        order = ", ".join(f'"{c}"' for c in table.key)
        rows = await db.fetch(f"SELECT {columns} FROM {table.name} ORDER BY {order}")
        result[table.name] = [tuple(cast("Iterable[object]", r)) for r in rows]
    return result


async def test_the_catalog_rebuilt_from_the_log_equals_the_live_one(api: Api) -> None:
    owner, fan = await api.member("owner"), await api.member("fan")
    one, two, three = await tracks_of(api, owner, 3)
    for n in range(5):
        await play(api, one, device=f"device-{n:04}")
        await play(api, two, device="device-same")
    await play(api, three, who=fan)
    await api.client.patch(f"/api/tracks/{two}", json={"title": "Re"}, headers=owner.headers)
    await api.client.delete(f"/api/tracks/{three}", headers=owner.headers)
    await api.client.post(f"/api/tracks/{one}/favorite", headers=fan.headers)
    created = await api.client.post(
        "/api/playlists", json={"title": "Mix", "public": True}, headers=fan.headers
    )
    playlist = created.json()["id"]
    for track_id in (one, two):
        await api.client.post(
            f"/api/playlists/{playlist}/tracks", json={"track_id": track_id}, headers=fan.headers
        )
    await settled(api)
    live = await catalog_rows(api)
    assert [r[0] for r in live["catalog_tracks"] if r[17] == 5] == [one]  # 17: plays

    await api.services.core.runner.rebuild("catalog")
    assert await catalog_rows(api) == live
