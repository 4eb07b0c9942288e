"""The streaming catalog through the API, embedded and on Postgres + Redis: publishing and its
refusals, unpublishing, plays counted by the projection (reloads do not inflate a count),
unlisted tracks, and a user's tracks."""

from __future__ import annotations

import uuid

from tests.integration.api.catalog_support import asset, play, publish, settled, track
from tests.integration.api.support import Api


async def test_a_published_track_is_listed_and_read_without_an_account(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    mixdown = await asset(api, project["id"], owner, duration=181.5)
    published = await publish(api, owner, project["id"], mixdown, description="Late night.")
    assert published["duration"] == 181.5
    assert published["user_id"] == owner.id
    assert (published["plays"], published["trending"], published["favorites"]) == (0, 0, 0)

    listed = await api.client.get("/api/tracks")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tracks"]] == [published["id"]]
    assert await track(api, published["id"]) == published
    mine = await api.client.get(f"/api/users/{owner.id}/tracks")
    assert [t["id"] for t in mine.json()["tracks"]] == [published["id"]]


async def test_publishing_is_refused_clearly(api: Api) -> None:
    owner, viewer, stranger = [await api.member(n) for n in ("owner", "viewer", "stranger")]
    project, other = await api.project(owner), await api.project(owner, "Other")
    await api.invite(owner, project["id"], viewer, "viewer")
    mixdown = await asset(api, project["id"], owner)
    elsewhere = await asset(api, other["id"], owner)
    picture = await asset(api, project["id"], owner, content_type="image/png")
    base = {
        "project_id": project["id"],
        "asset_id": mixdown,
        "title": "T",
        "artists": ["A"],
        "genre": "Pop",
        "visibility": "public",
    }
    cases = [
        (viewer, base, 403, "forbidden"),
        (stranger, base, 404, "not_found"),
        (owner, base | {"project_id": str(uuid.uuid4())}, 404, "not_found"),
        (owner, base | {"asset_id": elsewhere}, 422, "unknown_asset"),
        (owner, base | {"asset_id": str(uuid.uuid4())}, 422, "unknown_asset"),
        (owner, base | {"cover_asset_id": mixdown}, 422, "invalid_cover"),
        (owner, base | {"visibility": "secret"}, 422, "invalid_request"),
        (owner, base | {"artists": []}, 422, "invalid_request"),
        (owner, base | {"title": ""}, 422, "invalid_request"),
        (owner, {k: v for k, v in base.items() if k != "genre"}, 422, "invalid_request"),
        (owner, base | {"asset_id": "not-a-uuid"}, 422, "invalid_request"),
    ]
    for who, body, status, code in cases:
        response = await api.client.post("/api/tracks", json=body, headers=who.headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert (await api.client.post("/api/tracks", json=base)).status_code == 401
    assert (await api.client.get("/api/tracks")).json()["tracks"] == []
    # An image asset makes a cover.
    covered = await publish(api, owner, project["id"], mixdown, cover_asset_id=picture)
    assert covered["cover_asset_id"] == picture


async def test_owners_unpublish_and_editors_update(api: Api) -> None:
    owner, editor = await api.member("owner"), await api.member("editor")
    project = await api.project(owner)
    await api.invite(owner, project["id"], editor, "editor")
    published = await publish(api, editor, project["id"], await asset(api, project["id"], owner))
    path = f"/api/tracks/{published['id']}"

    changed = await api.client.patch(path, json={"title": "Dawn"}, headers=editor.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Dawn"
    empty = await api.client.patch(path, json={}, headers=editor.headers)
    assert empty.status_code == 422
    refused = await api.client.delete(path, headers=editor.headers)
    assert refused.status_code == 403
    assert (await api.client.delete(path, headers=owner.headers)).status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert (await api.client.delete(path, headers=owner.headers)).status_code == 404
    gone = await api.client.post(f"{path}/plays", json={"device_id": "device-0001"})
    assert gone.status_code == 404
    assert (await api.client.get("/api/tracks/not-a-uuid")).status_code == 404


async def test_reloading_does_not_inflate_a_play_count(api: Api) -> None:
    owner, listener = await api.member("owner"), await api.member("listener")
    project = await api.project(owner)
    published = await publish(api, owner, project["id"], await asset(api, project["id"], owner))
    track_id = published["id"]
    for _ in range(3):  # one anonymous device reloading the page
        await play(api, track_id, device="device-aaaa")
    await play(api, track_id, device="device-bbbb")
    for _ in range(2):  # a signed-in listener, with or without a device id
        await play(api, track_id, who=listener)
    await play(api, track_id, device="device-cccc", who=listener)
    await settled(api)
    counted = await track(api, track_id)
    assert (counted["plays"], counted["trending"]) == (3, 3)
    series = await api.client.get(f"/api/tracks/{track_id}/plays?days=2")
    assert series.status_code == 200
    body = series.json()
    assert len(body["days"]) == 2  # yesterday and today (UTC): a test near midnight may split
    assert sum(d["plays"] for d in body["days"]) == 3
    assert body["plays"] == 3


async def test_play_requests_are_refused_clearly(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    published = await publish(api, owner, project["id"], await asset(api, project["id"], owner))
    path = f"/api/tracks/{published['id']}/plays"
    no_device = await api.client.post(path, json={})
    assert (no_device.status_code, no_device.json()["error"]["code"]) == (422, "device_required")
    for device in ("short", "has spaces in it", "x" * 129):
        bad = await api.client.post(path, json={"device_id": device})
        assert bad.status_code == 422, device
    unknown = await api.client.post(
        f"/api/tracks/{uuid.uuid4()}/plays", json={"device_id": "device-0001"}
    )
    assert unknown.status_code == 404
    bad_token = await api.client.post(
        path, json={"device_id": "device-0001"}, headers={"Authorization": "Bearer nope"}
    )
    assert bad_token.status_code == 401
    days = await api.client.get(f"{path}?days=0")
    assert days.status_code == 422
    await settled(api)
    assert (await track(api, published["id"]))["plays"] == 0


async def test_plays_sent_together_count_as_each_would_alone(api: Api) -> None:
    owner, listener = await api.member("owner"), await api.member("listener")
    project = await api.project(owner)
    audio = await asset(api, project["id"], owner)
    first = (await publish(api, owner, project["id"], audio))["id"]
    second = (await publish(api, owner, project["id"], audio, title="Second"))["id"]
    anonymous = {
        "plays": [
            {"track_id": first, "device_id": "device-aaaa"},
            {"track_id": second, "device_id": "device-aaaa"},
            {"track_id": first, "device_id": "device-aaaa"},  # a reload: not counted again
            {"track_id": first, "device_id": "device-bbbb"},
        ]
    }
    sent = await api.client.post("/api/plays", json=anonymous)
    assert sent.status_code == 202, sent.text
    answered = sent.json()["plays"]
    assert [p["track_id"] for p in answered] == [first, second, first, first]
    positions = [p["position"] for p in answered]
    assert len(set(positions)) == 4
    assert positions[0] < positions[2] < positions[3]  # one track's plays in the request's order
    mine = {"plays": [{"track_id": second}, {"track_id": second}, {"track_id": first}]}
    signed_in = await api.client.post("/api/plays", json=mine, headers=listener.headers)
    assert signed_in.status_code == 202, signed_in.text
    await settled(api)
    assert (await track(api, first))["plays"] == 3  # devices aaaa, bbbb, the listener
    assert (await track(api, second))["plays"] == 2  # device aaaa, the listener


async def test_a_batch_of_plays_is_refused_whole_and_clearly(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    known = (await publish(api, owner, project["id"], await asset(api, project["id"], owner)))["id"]
    head = await api.services.core.store.head_position()
    play_known = {"track_id": known, "device_id": "device-0001"}
    unknown = str(uuid.uuid4())
    cases = [
        (
            {"plays": [play_known, {"track_id": unknown, "device_id": "device-0001"}]},
            422,
            "unknown_tracks",
        ),
        (
            {"plays": [play_known, {"track_id": known.upper(), "device_id": "device-0001"}]},
            422,
            "unknown_tracks",
        ),
        ({"plays": [play_known, {"track_id": known}]}, 422, "device_required"),
        ({"plays": []}, 422, "invalid_request"),
        ({"plays": [play_known] * 501}, 422, "invalid_request"),
        ({"plays": [{**play_known, "device_id": "short"}]}, 422, "invalid_request"),
        ({"plays": [{**play_known, "extra": 1}]}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        refused = await api.client.post("/api/plays", json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), body
    assert (
        unknown
        in (await api.client.post("/api/plays", json=cases[0][0])).json()["error"]["message"]
    )
    bad_token = await api.client.post(
        "/api/plays", json={"plays": [play_known]}, headers={"Authorization": "Bearer nope"}
    )
    assert bad_token.status_code == 401
    assert await api.services.core.store.head_position() == head  # nothing was recorded


async def test_unlisted_tracks_play_by_link_but_are_not_listed(api: Api) -> None:
    owner, other = await api.member("owner"), await api.member("other")
    project = await api.project(owner)
    hidden = await publish(
        api, owner, project["id"], await asset(api, project["id"], owner), visibility="unlisted"
    )
    await play(api, hidden["id"], device="device-0001")
    await settled(api)
    assert (await track(api, hidden["id"]))["plays"] == 1
    assert (await api.client.get("/api/tracks")).json()["tracks"] == []
    assert (await api.client.get("/api/tracks?q=night")).json()["tracks"] == []
    path = f"/api/users/{owner.id}/tracks"
    assert (await api.client.get(path, headers=other.headers)).json()["tracks"] == []
    mine = await api.client.get(path, headers=owner.headers)
    assert [t["id"] for t in mine.json()["tracks"]] == [hidden["id"]]
    shown = await api.client.patch(
        f"/api/tracks/{hidden['id']}", json={"visibility": "public"}, headers=owner.headers
    )
    assert shown.status_code == 200
    assert [t["id"] for t in (await api.client.get("/api/tracks")).json()["tracks"]] == [
        hidden["id"]
    ]
