"""A published track's audio, uploaded through the asset API and streamed to anyone, embedded
and on Postgres + Redis: a listener without an account seeks with byte ranges, revalidates, and
loses the audio with the track; the asset is not deleted while a published track plays it."""

from __future__ import annotations

from harness.audio import wav_bytes
from tests.integration.api.catalog_support import publish
from tests.integration.api.support import Api, Member


async def test_anyone_streams_and_seeks_in_a_published_tracks_audio(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    body = wav_bytes(seconds=0.5, rate=8000, channels=2)
    uploaded = await api.client.post(
        f"/api/projects/{project['id']}/assets",
        params={"name": "mixdown.wav"},
        content=body,
        headers={**owner.headers, "Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    asset = uploaded.json()
    track = await publish(api, owner, project["id"], asset["id"])
    assert track["duration"] == asset["duration"]
    path = track["audio_url"]
    assert path == f"/api/tracks/{track['id']}/audio"

    whole = await api.client.get(path)
    assert whole.status_code == 200
    assert whole.content == body
    assert whole.headers["accept-ranges"] == "bytes"
    seek = await api.client.get(path, headers={"Range": "bytes=1000-1999"})
    assert seek.status_code == 206
    assert seek.content == body[1000:2000]
    assert seek.headers["content-range"] == f"bytes 1000-1999/{len(body)}"
    tail = await api.client.get(path, headers={"Range": "bytes=-10"})
    assert tail.content == body[-10:]
    beyond = await api.client.get(path, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416
    again = await api.client.get(path, headers={"If-None-Match": whole.headers["etag"]})
    assert again.status_code == 304
    head = await api.client.head(path)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(body)))
    # The asset itself stays the project's: a listener cannot fetch it by its id.
    assert (await api.client.get(f"/api/assets/{asset['id']}")).status_code == 401


async def test_an_unpublished_tracks_audio_is_gone(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    track = await publish(api, owner, project["id"], await short_wav(api, owner, project["id"]))
    assert (await api.client.get(track["audio_url"])).status_code == 200
    removed = await api.client.delete(f"/api/tracks/{track['id']}", headers=owner.headers)
    assert removed.status_code == 204
    assert (await api.client.get(track["audio_url"])).status_code == 404


async def test_an_asset_a_published_track_plays_is_not_deleted(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    asset = await short_wav(api, owner, project["id"])
    track = await publish(api, owner, project["id"], asset)
    refused = await api.client.delete(f"/api/assets/{asset}", headers=owner.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "asset_published"
    assert refused.json()["error"]["details"] == {"tracks": [track["id"]]}
    assert (await api.client.get(track["audio_url"])).status_code == 200
    unpublished = await api.client.delete(f"/api/tracks/{track['id']}", headers=owner.headers)
    assert unpublished.status_code == 204
    deleted = await api.client.delete(f"/api/assets/{asset}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text


async def short_wav(api: Api, owner: Member, project_id: str) -> str:
    """A fifth of a second of audio uploaded to the project: its asset id."""
    uploaded = await api.client.post(
        f"/api/projects/{project_id}/assets",
        content=wav_bytes(seconds=0.2),
        headers={**owner.headers, "Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    asset: str = uploaded.json()["id"]
    return asset
