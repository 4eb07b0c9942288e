"""Runs the blob storage conformance suite against both backends: files in a fresh folder, and
a fresh bucket of a real S3-compatible server (moto's, started by the session's `s3` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session

from harness.s3 import ACCESS_KEY, S3Server
from jacameno.storage import BlobStore, StorageUnavailable
from jacameno.storage.local import PARTIAL, LocalBlobStore
from jacameno.storage.s3 import MIB, S3BlobStore, S3Location
from tests.conformance.storage import Backend, StorageConformance


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self) -> BlobStore:
        return LocalBlobStore(self.root)

    async def unfinished(self) -> int:
        return len(list((self.root / PARTIAL).iterdir()))

    async def keys(self) -> set[str]:
        return {
            str(path.relative_to(self.root))
            for path in self.root.rglob("*")
            if path.is_file() and PARTIAL not in path.parts
        }


class S3Backend:
    name = "s3"

    def __init__(self, server: S3Server) -> None:
        self.location = S3Location(
            server.create_bucket(), "some/prefix", server.region, server.endpoint_url
        )

    async def open(self) -> BlobStore:
        return await S3BlobStore.open(self.location, part_bytes=5 * MIB, access_key=ACCESS_KEY)

    async def _call(self, method: str, **arguments: Any) -> Any:
        async with get_session().create_client(
            "s3",
            region_name=self.location.region,
            endpoint_url=self.location.endpoint_url,
            aws_access_key_id=ACCESS_KEY[0],
            aws_secret_access_key=ACCESS_KEY[1],
        ) as client:
            return await getattr(client, method)(Bucket=self.location.bucket, **arguments)

    async def unfinished(self) -> int:
        answer = await self._call("list_multipart_uploads")
        return len(answer.get("Uploads", []))

    async def keys(self) -> set[str]:
        answer = await self._call("list_objects_v2")
        prefix = self.location.prefix + "/"
        return {item["Key"].removeprefix(prefix) for item in answer.get("Contents", [])}


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return LocalBackend(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue("s3")
    return S3Backend(server)


class TestBlobStore(StorageConformance):
    pass


async def test_an_unreachable_bucket_is_an_error_at_open(s3: S3Server) -> None:
    location = S3Location("no-such-bucket", "", s3.region, s3.endpoint_url)
    with pytest.raises(StorageUnavailable, match="no-such-bucket"):
        await S3BlobStore.open(location, access_key=ACCESS_KEY)


async def test_a_local_store_sweeps_what_a_killed_put_left(tmp_path: Path) -> None:
    (tmp_path / PARTIAL).mkdir(parents=True)
    (tmp_path / PARTIAL / "left-by-a-kill").write_bytes(b"half")
    LocalBlobStore(tmp_path)
    assert list((tmp_path / PARTIAL).iterdir()) == []
