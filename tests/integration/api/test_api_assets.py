"""Audio assets through the API, on the embedded default (SQLite, files in the data folder) and
on Postgres + Redis + S3 (a real moto server): upload, list, stream back with ranges like a
browser seeking, dedupe, delete, and every refusal with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from pycrdt import Array, Doc, Map

from harness.audio import wav_bytes
from harness.s3 import ACCESS_KEY, S3Server
from harness.settings import app_settings
from jacameno.settings import Settings
from tests.integration.api.support import Api, Member, running

MAX_UPLOAD = 200_000
BINARY = {"Content-Type": "application/octet-stream"}


def _settings(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **extra: str) -> Settings:
    if kind == "embedded":
        return app_settings(tmp_path, None, None, max_upload_bytes=str(MAX_UPLOAD), **extra)
    server: S3Server = request.getfixturevalue("s3")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)  # botocore's standard credentials
    return app_settings(
        tmp_path,
        request.getfixturevalue("fresh_pg_url"),
        request.getfixturevalue("redis_url"),
        max_upload_bytes=str(MAX_UPLOAD),
        storage_url=f"s3://{server.create_bucket()}/assets",
        s3_endpoint_url=server.endpoint_url,
        s3_region=server.region,
        **extra,
    )


@pytest.fixture(params=["embedded", "postgres-s3"])
def asset_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # A sync fixture: the session's services (Postgres template, moto) start outside the loop.
    return _settings(request.param, request, tmp_path)


@pytest.fixture
def redirect_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings("postgres-s3", request, tmp_path, storage_redirect="true")


@pytest.fixture
async def api(asset_settings: Settings) -> AsyncIterator[Api]:
    async with running(asset_settings) as running_api:
        yield running_api


async def stored_keys(api: Api) -> set[str]:
    """Every blob the storage holds."""
    storage = api.settings.storage
    if storage.kind == "file":
        root = storage.folder
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and ".partial" not in p.parts
        }
    async with get_session().create_client(
        "s3",
        region_name=storage.s3_region,
        endpoint_url=storage.s3_endpoint_url,
        aws_access_key_id=ACCESS_KEY[0],
        aws_secret_access_key=ACCESS_KEY[1],
    ) as client:
        answer = await client.list_objects_v2(Bucket=storage.bucket)
    return {item["Key"].removeprefix("assets/") for item in answer.get("Contents", [])}


async def upload(
    api: Api, who: Member, project: str, body: bytes, name: str = "take.wav"
) -> httpx.Response:
    return await api.client.post(
        f"/api/projects/{project}/assets",
        params={"name": name},
        content=body,
        headers={**who.headers, **BINARY},
    )


async def uploaded(api: Api, who: Member, project: str, body: bytes) -> dict[str, Any]:
    answer = await upload(api, who, project, body)
    assert answer.status_code == 201, answer.text
    asset: dict[str, Any] = answer.json()
    return asset


async def listed(api: Api, who: Member, project: str) -> list[str]:
    answer = await api.client.get(f"/api/projects/{project}/assets", headers=who.headers)
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["assets"]]


async def test_an_upload_reads_the_header_and_lists(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = wav_bytes(seconds=0.5, rate=8000, channels=2)
    asset = await uploaded(api, owner, project, body)
    assert asset["project_id"] == project
    assert asset["user_id"] == owner.id
    assert asset["sha256"] == hashlib.sha256(body).hexdigest()
    assert asset["size"] == len(body)
    assert (asset["format"], asset["content_type"]) == ("WAV", "audio/wav")
    assert (asset["sample_rate"], asset["channels"], asset["frames"]) == (8000, 2, 4000)
    assert asset["duration"] == 0.5
    assert asset["name"] == "take.wav"
    # Listed at once: the upload waited for the read model.
    assert await listed(api, owner, project) == [asset["id"]]
    assert await stored_keys(api) == {f"sha256/{asset['sha256']}"}


async def test_the_same_content_is_stored_once(api: Api) -> None:
    owner = await api.member("owner")
    first, second = [(await api.project(owner, t))["id"] for t in ("A", "B")]
    body = wav_bytes(seconds=0.3)
    assets = [await uploaded(api, owner, p, body) for p in (first, first, second)]
    assert len({a["id"] for a in assets}) == 3  # each upload is an asset of its own
    assert len({a["sha256"] for a in assets}) == 1
    assert await stored_keys(api) == {f"sha256/{assets[0]['sha256']}"}
    assert set(await listed(api, owner, first)) == {assets[0]["id"], assets[1]["id"]}


async def test_what_is_not_audio_is_refused_and_nothing_stored(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    fake_wav = b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 64
    for body in (b"just some text, not audio", b"", fake_wav, b"\x89PNG\r\n\x1a\n" * 100):
        answer = await upload(api, owner, project, body)
        assert answer.status_code == 415, (body[:10], answer.text)
        assert answer.json()["error"]["code"] == "not_audio"
    assert await listed(api, owner, project) == []
    assert await stored_keys(api) == set()


async def test_too_large_an_upload_is_refused_and_nothing_stored(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = wav_bytes(seconds=20)  # 320 kB, more than MAX_UPLOAD
    assert len(body) > MAX_UPLOAD
    answer = await upload(api, owner, project, body)  # Content-Length says so: refused at once
    assert answer.status_code == 413
    assert answer.json()["error"]["details"] == {"max_bytes": MAX_UPLOAD}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused as it grows
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    answer = await api.client.post(
        f"/api/projects/{project}/assets", content=chunks(), headers={**owner.headers, **BINARY}
    )
    assert answer.status_code == 413
    assert await listed(api, owner, project) == []
    assert await stored_keys(api) == set()
    spool = api.settings.data_dir / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


async def test_viewers_cannot_upload_and_strangers_see_nothing(api: Api) -> None:
    owner, editor, viewer, stranger = [await api.member(n) for n in ("o", "e", "v", "s")]
    project = (await api.project(owner))["id"]
    await api.invite(owner, project, editor, "editor")
    await api.invite(owner, project, viewer, "viewer")
    body = wav_bytes()
    answer = await upload(api, viewer, project, body)
    assert answer.status_code == 403
    answer = await upload(api, stranger, project, body)
    assert answer.status_code == 404
    assert await stored_keys(api) == set()
    asset = await uploaded(api, editor, project, body)
    # The viewer reads and lists; the stranger finds neither the project nor the asset.
    assert await listed(api, viewer, project) == [asset["id"]]
    assert (
        await api.client.get(f"/api/assets/{asset['id']}", headers=viewer.headers)
    ).content == body
    for path in (f"/api/projects/{project}/assets", f"/api/assets/{asset['id']}"):
        assert (await api.client.get(path, headers=stranger.headers)).status_code == 404
    delete = await api.client.delete(f"/api/assets/{asset['id']}", headers=viewer.headers)
    assert delete.status_code == 403
    delete = await api.client.delete(f"/api/assets/{asset['id']}", headers=stranger.headers)
    assert delete.status_code == 404
    anonymous = await api.client.get(f"/api/assets/{asset['id']}")
    assert anonymous.status_code == 401


async def test_a_browser_seeks_with_ranges(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = wav_bytes(seconds=2.0, rate=16000)  # 64 kB
    asset = await uploaded(api, owner, project, body)
    url, size = f"/api/assets/{asset['id']}", len(body)
    etag = f'"{asset["sha256"]}"'

    async def get(**headers: str) -> httpx.Response:
        return await api.client.get(url, headers={**owner.headers, **headers})

    whole = await get()
    assert whole.status_code == 200
    assert whole.content == body
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["etag"] == etag
    assert int(whole.headers["content-length"]) == size
    assert "content-encoding" not in whole.headers  # never gzipped, even when asked
    # What a media element does: open with `bytes=0-`, then seek to the middle, then the end.
    cases = {
        "bytes=0-": (0, size),
        f"bytes={size // 2}-": (size // 2, size),
        f"bytes={size - 1}-": (size - 1, size),
        "bytes=0-0": (0, 1),
        "bytes=-100": (size - 100, size),
        f"bytes=1000-{size * 2}": (1000, size),
        "bytes=44-1043": (44, 1044),
    }
    for header, (start, end) in cases.items():
        part = await get(Range=header)
        assert part.status_code == 206, header
        assert part.content == body[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert int(part.headers["content-length"]) == end - start
        assert part.headers["etag"] == etag
    for bad in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0", "bytes=9-3"):
        refused = await get(Range=bad)
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.json()["error"]["code"] == "range_not_satisfiable"
    # HEAD: the headers a GET would have, no body.
    head = await api.client.head(url, headers={**owner.headers, "Range": "bytes=10-19"})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes 10-19/{size}"
    assert head.headers["content-length"] == "10"
    assert head.content == b""
    # Several ranges, or another unit: the whole file.
    assert (await get(Range="bytes=0-1,5-6")).status_code == 200
    assert (await get(Range="items=0-1")).status_code == 200
    # Validators: a cached copy is still good; a stale one gets the whole file.
    unchanged = await get(**{"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert (await get(**{"If-None-Match": '"other"'})).status_code == 200
    assert (await get(Range="bytes=10-19", **{"If-Range": etag})).status_code == 206
    stale = await get(Range="bytes=10-19", **{"If-Range": '"other"'})
    assert stale.status_code == 200
    assert stale.content == body


@pytest.mark.parametrize(
    "path", ["/api/assets/not-a-uuid", "/api/assets/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12]
)
async def test_an_unknown_asset_is_not_found(api: Api, path: str) -> None:
    owner = await api.member("owner")
    answer = await api.client.get(path, headers=owner.headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def _put_clip(api: Api, who: Member, project: str, asset_id: str | None) -> None:
    doc: Doc[Any] = Doc()
    state = await api.client.get(
        f"/api/projects/{project}/state", params={"format": "yjs"}, headers=who.headers
    )
    doc.apply_update(state.content)
    before = doc.get_state()
    tracks = doc.get("tracks", type=Array)
    if asset_id is None:
        tracks[0]["clips"].clear()
    else:
        clip = Map({"id": "c1", "asset_id": asset_id, "start": 0.0, "length": 1.0})
        tracks.append(Map({"id": "t1", "name": "Vox", "kind": "audio", "clips": Array([clip])}))
    answer = await api.client.post(
        f"/api/projects/{project}/updates",
        content=doc.get_update(before),
        headers={**who.headers, **BINARY},
    )
    assert answer.status_code == 200, answer.text


async def test_an_asset_a_clip_uses_cannot_be_deleted(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = await uploaded(api, owner, project, wav_bytes())
    await _put_clip(api, owner, project, asset["id"])
    url = f"/api/assets/{asset['id']}"
    refused = await api.client.delete(url, headers=owner.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "asset_in_use"
    assert refused.json()["error"]["details"] == {"clips": ["c1"]}
    assert await listed(api, owner, project) == [asset["id"]]
    await _put_clip(api, owner, project, None)  # the clip goes: now it can
    assert (await api.client.delete(url, headers=owner.headers)).status_code == 204
    assert await listed(api, owner, project) == []
    assert (await api.client.get(url, headers=owner.headers)).status_code == 404
    assert (await api.client.delete(url, headers=owner.headers)).status_code == 404


async def test_an_upload_is_on_the_projects_stream(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    asset = await uploaded(api, owner, project, wav_bytes())
    history = await api.client.get(f"/api/projects/{project}/history", headers=owner.headers)
    kinds = [entry["type"] for entry in history.json()["entries"]]
    assert kinds[-1] == "asset.uploaded"
    store = api.services.core.store
    events = await store.read_stream(f"project-{project}", 1, 100)
    assert events[-1].type == "asset.uploaded"
    assert asset["id"].encode() in events[-1].data


async def test_on_s3_get_can_redirect_to_a_presigned_url(redirect_settings: Settings) -> None:
    settings = redirect_settings
    async with running(settings) as api:
        owner = await api.member("owner")
        project = (await api.project(owner))["id"]
        body = wav_bytes(seconds=1.0)
        asset = await uploaded(api, owner, project, body)
        answer = await api.client.get(f"/api/assets/{asset['id']}", headers=owner.headers)
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(settings.storage.s3_endpoint_url or "")
        async with httpx.AsyncClient() as http:  # the browser follows, Range and all
            part = await http.get(location, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == body[100:200]
        assert part.headers["content-type"] == "audio/wav"
        # A cached copy is still answered here, without a redirect.
        etag = f'"{asset["sha256"]}"'
        cached = await api.client.get(
            f"/api/assets/{asset['id']}", headers={**owner.headers, "If-None-Match": etag}
        )
        assert cached.status_code == 304


async def test_a_rebuilt_assets_model_equals_the_live_one(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    kept = await uploaded(api, owner, project, wav_bytes(seconds=0.2))
    gone = await uploaded(api, owner, project, wav_bytes(seconds=0.3))
    await uploaded(api, owner, project, wav_bytes(seconds=0.2))  # the same content again
    deleted = await api.client.delete(f"/api/assets/{gone['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    db = api.services.core.db
    query = "SELECT asset_id, sha256, size, created_at, version, deleted_at FROM assets"
    before = sorted(tuple(row[c] for c in range(6)) for row in await db.fetch(query))
    await api.services.core.runner.rebuild("assets")
    after = sorted(tuple(row[c] for c in range(6)) for row in await db.fetch(query))
    assert after == before
    assert len(before) == 3
    assert [r[0] for r in before if r[5] is not None] == [gone["id"]]
    assert kept["id"] in await listed(api, owner, project)


async def test_concurrent_uploads_of_the_same_content_store_it_once(api: Api) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = wav_bytes(seconds=1.0)
    answers = await asyncio.gather(*(upload(api, owner, project, body) for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 4
    assert await stored_keys(api) == {f"sha256/{hashlib.sha256(body).hexdigest()}"}
    for answer in answers:
        back = await api.client.get(f"/api/assets/{answer.json()['id']}", headers=owner.headers)
        assert back.content == body
