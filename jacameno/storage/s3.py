"""Blobs in an S3 bucket (or any S3-compatible store: give its endpoint URL), through aiobotocore:
the one module that imports it. Credentials come from the standard places botocore looks
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role).

A put of at most one part (`part_bytes`) is one PutObject; a larger one is a multipart upload
whose parts are sent as they fill, so at most one part is held in memory, and which is aborted
if anything fails (the stream, the hash check, a cancellation): S3 then keeps nothing of it.
Reads are ranged GetObjects streamed through in chunks, a window at a time (a small first one:
the first byte comes quickly, and a reader that stops early has not made S3 send the rest)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from jacameno.storage import (
    CHUNK_BYTES,
    BlobNotFound,
    BlobStat,
    BlobTooLarge,
    IntegrityError,
    RangeNotSatisfiable,
    StorageError,
    StorageUnavailable,
    check_key,
    check_range,
    read_file,
)

MIB = 1024 * 1024
PART_BYTES = 8 * MIB  # S3 takes parts of 5 MiB at least (the last aside)
# A read is a series of ranged GETs: the first of FIRST_WINDOW bytes, the next of WINDOW each.
FIRST_WINDOW = 1 * MIB
WINDOW = 8 * MIB
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the blobs are: a bucket, a key prefix (may be empty), the region, and the endpoint
    URL of an S3-compatible store (None: AWS)."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None


def _translate(exc: Exception, key: str) -> StorageError:
    """A foreign error as one of ours."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND:
            return BlobNotFound(key)
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
            return StorageUnavailable(f"s3: {code} on {key}")
        return StorageError(f"s3: {code} on {key}: {error.get('Message', '')}")
    return StorageUnavailable(f"s3: {type(exc).__name__}: {exc}")


_FOREIGN = (ClientError, BotoCoreError, aiohttp.ClientError, OSError)


class S3BlobStore:
    """Blobs under `location.prefix` in `location.bucket`; open with `S3BlobStore.open`."""

    adopts_files = False  # put_file uploads a copy: the file need not be durable

    def __init__(
        self, location: S3Location, client: Any, stack: contextlib.AsyncExitStack, part_bytes: int
    ) -> None:
        self.location = location
        self._client = client
        self._stack = stack
        self._part_bytes = part_bytes

    @classmethod
    async def open(
        cls,
        location: S3Location,
        *,
        part_bytes: int = PART_BYTES,
        access_key: tuple[str, str] | None = None,
    ) -> S3BlobStore:
        """A store on `location`; `access_key` (id, secret) instead of the standard places.
        StorageUnavailable if the bucket cannot be reached."""
        if part_bytes < 5 * MIB:
            raise ValueError("S3 parts are 5 MiB at least")
        stack = contextlib.AsyncExitStack()
        credentials = (
            {}
            if access_key is None
            else {"aws_access_key_id": access_key[0], "aws_secret_access_key": access_key[1]}
        )
        config = AioConfig(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=64,
            # Virtual-host addressing needs DNS for each bucket: path style works everywhere.
            s3={"addressing_style": "path"},
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=location.region,
                endpoint_url=location.endpoint_url,
                config=config,
                **credentials,
            )
        )
        store = cls(location, client, stack, part_bytes)
        try:
            await client.head_bucket(Bucket=location.bucket)
        except _FOREIGN as exc:
            await stack.aclose()
            raise StorageUnavailable(
                f"s3: bucket {location.bucket!r} cannot be reached: {exc}"
            ) from exc
        return store

    def _key(self, key: str) -> str:
        prefix = self.location.prefix.strip("/")
        check_key(key)
        return f"{prefix}/{key}" if prefix else key

    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> int:
        """An upload of the file's bytes (multipart when large), as `put`."""
        return await self.put(key, read_file(path), content_type=content_type)

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        name = self._key(key)
        digest = hashlib.sha256()
        buffer = bytearray()
        size = 0
        upload: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            # The stream's own errors pass as they are; only S3's are translated (`_s3`).
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(f"{key}: more than {max_bytes} bytes")
                digest.update(chunk)
                buffer += chunk
                while len(buffer) >= self._part_bytes:
                    if upload is None:
                        started = await self._s3(
                            key, "create_multipart_upload", Key=name, ContentType=content_type
                        )
                        upload = str(started["UploadId"])
                    part = bytes(buffer[: self._part_bytes])
                    del buffer[: self._part_bytes]
                    parts.append(await self._part(key, name, upload, len(parts) + 1, part))
            if sha256 is not None and digest.hexdigest() != sha256:
                raise IntegrityError(f"{key}: the bytes do not hash to {sha256}")
            if upload is None:
                await self._s3(
                    key, "put_object", Key=name, Body=bytes(buffer), ContentType=content_type
                )
            else:
                if buffer:
                    parts.append(await self._part(key, name, upload, len(parts) + 1, bytes(buffer)))
                await self._s3(
                    key,
                    "complete_multipart_upload",
                    Key=name,
                    UploadId=upload,
                    MultipartUpload={"Parts": parts},
                )
                upload = None
        finally:
            if upload is not None:
                await asyncio.shield(self._abort(name, upload))
        return size

    async def _s3(self, key: str, method: str, **arguments: Any) -> Any:
        """The client's `method` on our bucket, its errors translated."""
        try:
            return await getattr(self._client, method)(Bucket=self.location.bucket, **arguments)
        except _FOREIGN as exc:
            raise _translate(exc, key) from exc

    async def _part(
        self, key: str, name: str, upload: str, number: int, body: bytes
    ) -> dict[str, Any]:
        answer = await self._s3(
            key, "upload_part", Key=name, UploadId=upload, PartNumber=number, Body=body
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def _abort(self, name: str, upload: str) -> None:
        # Best effort: if the abort fails too, the bucket's lifecycle rule for incomplete
        # multipart uploads (docs/assets.md) reclaims the parts; no reader ever sees them.
        with contextlib.suppress(*_FOREIGN):
            await self._client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=name, UploadId=upload
            )

    async def open_range(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        check_range(start, end)
        name = self._key(key)
        if end is not None and end == start:
            # S3 has no empty range: check the blob is there and the start within it.
            found = await self.stat(key)
            if found is None:
                raise BlobNotFound(key)
            if start > found.size:
                raise RangeNotSatisfiable(key, found.size)
            return _empty()
        # The first window is small, so that the first byte comes quickly and a reader that
        # stops early (a player seeking on) has not made S3 send much more; then larger ones.
        first_end = start + FIRST_WINDOW if end is None else min(end, start + FIRST_WINDOW)
        try:
            answer = await self._client.get_object(
                Bucket=self.location.bucket, Key=name, Range=f"bytes={start}-{first_end - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                found = await self.stat(key)
                if found is None:
                    raise BlobNotFound(key) from exc
                if start == found.size:  # the end of the blob: an empty read, as locally
                    return _empty()
                raise RangeNotSatisfiable(key, found.size) from exc
            raise _translate(exc, key) from exc
        except _FOREIGN as exc:
            raise _translate(exc, key) from exc
        size = int(str(answer["ContentRange"]).rpartition("/")[2])
        stop = size if end is None else min(end, size)
        return self._windows(key, name, answer["Body"], start, stop)

    async def _windows(
        self, key: str, name: str, body: Any, position: int, stop: int
    ) -> AsyncGenerator[bytes, None]:
        """The bytes from `position` to `stop`: `body` (the first window's), then ranged GETs
        of WINDOW bytes each, one open at a time, closed however the reader stops."""
        try:
            while True:
                try:
                    chunk = await body.read(CHUNK_BYTES)
                except _FOREIGN as exc:
                    raise _translate(exc, key) from exc
                if chunk:
                    position += len(chunk)
                    yield chunk
                    continue
                body.close()
                body = None
                if position >= stop:
                    return
                window = f"bytes={position}-{min(stop, position + WINDOW) - 1}"
                body = (await self._s3(key, "get_object", Key=name, Range=window))["Body"]
        finally:
            if body is not None:
                body.close()

    async def stat(self, key: str) -> BlobStat | None:
        try:
            answer = await self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
        except _FOREIGN as exc:
            error = _translate(exc, key)
            if isinstance(error, BlobNotFound):
                return None
            raise error from exc
        return BlobStat(key, int(answer["ContentLength"]))

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self.location.bucket, Key=self._key(key))
        except _FOREIGN as exc:
            raise _translate(exc, key) from exc

    async def presigned_url(self, key: str, *, seconds: int, content_type: str) -> str | None:
        try:
            url: str = await self._client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.location.bucket,
                    "Key": self._key(key),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=seconds,
            )
        except _FOREIGN as exc:
            raise _translate(exc, key) from exc
        return url

    async def close(self) -> None:
        await self._stack.aclose()


async def _empty() -> AsyncGenerator[bytes, None]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk
