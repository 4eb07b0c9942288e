"""Uploads of several spool batches (jacameno.assets.service: hashed and written in a worker
thread a batch at a time while the next arrives), streamed without Content-Length as a browser
may: the bytes stored and their hash are those sent, and a body refused past the maximum while
a batch is being written leaves nothing behind. The spool is synced to the disk while it arrives
(the store adopts it), and a disk that fails that sync answers 503 with nothing kept. On the
embedded default: the spool is the same on S3 (tests/integration/api/test_api_assets.py runs
both), where it is not synced: the store uploads a copy."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness.audio import write_wav
from harness.settings import app_settings
from jacameno.assets.service import SPOOL_BATCH_BYTES, SPOOL_SYNC_BYTES
from tests.integration.api.support import Api, Member, running

MAX_UPLOAD = 3 * SPOOL_SYNC_BYTES
PIECE = 64 * 1024


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = app_settings(tmp_path / "server", None, None, max_upload_bytes=str(MAX_UPLOAD))
    async with running(settings) as running_api:
        yield running_api


async def pieces(body: bytes) -> AsyncIterator[bytes]:
    """`body` as a client streams it without Content-Length, 64 KiB at a time."""
    for start in range(0, len(body), PIECE):
        yield body[start : start + PIECE]


async def upload(api: Api, who: Member, project: str, body: bytes) -> httpx.Response:
    return await api.client.post(
        f"/api/projects/{project}/assets",
        content=pieces(body),
        headers={**who.headers, "Content-Type": "application/octet-stream"},
    )


async def upload_new(api: Api, tmp_path: Path, size: int) -> tuple[httpx.Response, Member, str]:
    """A WAV of `size` bytes uploaded by the owner of a new project: the answer, who, where."""
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = write_wav(tmp_path / "take.wav", size).read_bytes()
    return await upload(api, owner, project, body), owner, project


async def assert_nothing_kept(api: Api, owner: Member, project: str) -> None:
    listing = await api.client.get(f"/api/projects/{project}/assets", headers=owner.headers)
    assert listing.json()["assets"] == []
    assert [p for p in api.settings.storage.folder.rglob("*") if p.is_file()] == []
    spool = api.settings.data_dir / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


async def test_a_body_of_several_batches_is_stored_as_sent(api: Api, tmp_path: Path) -> None:
    owner = await api.member("owner")
    project = (await api.project(owner))["id"]
    body = write_wav(tmp_path / "take.wav", 3 * SPOOL_BATCH_BYTES + 12_345).read_bytes()
    answer = await upload(api, owner, project, body)
    assert answer.status_code == 201, answer.text
    asset = answer.json()
    assert (asset["sha256"], asset["size"]) == (hashlib.sha256(body).hexdigest(), len(body))
    back = await api.client.get(f"/api/assets/{asset['id']}", headers=owner.headers)
    assert back.status_code == 200
    assert back.content == body


async def test_a_body_refused_while_a_batch_is_written_leaves_nothing(
    api: Api, tmp_path: Path
) -> None:
    answer, owner, project = await upload_new(api, tmp_path, MAX_UPLOAD + SPOOL_BATCH_BYTES)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["details"] == {"max_bytes": MAX_UPLOAD}
    await assert_nothing_kept(api, owner, project)


async def test_a_long_body_is_synced_while_it_arrives(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_at: list[int] = []  # the spool's size on the disk when each sync began

    def fdatasync(descriptor: int) -> None:
        synced_at.append(os.fstat(descriptor).st_size)
        os.fsync(descriptor)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    answer, _, _ = await upload_new(api, tmp_path, MAX_UPLOAD - 1000)
    assert answer.status_code == 201, answer.text
    assert synced_at, "no sync while the body arrived"
    # The first began with 4 MiB written and most of the body still to come.
    assert SPOOL_SYNC_BYTES <= synced_at[0] < MAX_UPLOAD - SPOOL_SYNC_BYTES, synced_at


async def test_a_spool_sync_the_disk_fails_answers_503_and_keeps_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fdatasync(descriptor: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    answer, owner, project = await upload_new(api, tmp_path, MAX_UPLOAD - 1000)
    assert answer.status_code == 503, answer.text
    await assert_nothing_kept(api, owner, project)
