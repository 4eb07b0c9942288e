"""Blob storage: where the bytes of audio assets live, behind one small Protocol.

Backends: `local` (files under the data folder: the embedded default) and `s3` (an S3 bucket
through aiobotocore, or any S3-compatible store). Both pass one conformance suite
(tests/conformance/storage.py). Keys are relative paths of `[A-Za-z0-9._-]` segments split by
`/` (the assets service uses `sha256/<hex>`); a key names immutable content: a `put` of an
existing key replaces it whole, never partly. docs/assets.md tells the story.

Errors (every backend raises these, never its own):

    StorageError           base
      BlobNotFound         no blob under that key
      RangeNotSatisfiable  a range starting past the blob's end
      IntegrityError       the bytes put do not hash to the SHA-256 the caller gave
      BlobTooLarge         more bytes than the caller's bound
      InvalidKey           a key outside the grammar above
      StorageUnavailable   the backend cannot be reached or failed; retry later
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = [
    "BlobNotFound",
    "BlobStat",
    "BlobStore",
    "BlobTooLarge",
    "IntegrityError",
    "InvalidKey",
    "RangeNotSatisfiable",
    "StorageError",
    "StorageUnavailable",
    "check_key",
]

CHUNK_BYTES = 256 * 1024  # the size of the chunks a read yields (the last may be shorter)

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """Base of the storage errors."""


class BlobNotFound(StorageError):
    """No blob under the key."""


class RangeNotSatisfiable(StorageError):
    """A read starting past the end of the blob (`size` says where it ends)."""

    def __init__(self, key: str, size: int) -> None:
        self.size = size
        super().__init__(f"{key}: the range starts past the end ({size} bytes)")


class IntegrityError(StorageError):
    """The bytes given to `put` do not hash to the SHA-256 given with them; nothing was stored."""


class BlobTooLarge(StorageError):
    """`put` was given more than `max_bytes`; nothing was stored."""


class InvalidKey(StorageError):
    """A key outside the grammar (relative, `[A-Za-z0-9._-]` segments, no `..`)."""


class StorageUnavailable(StorageError):
    """The backend failed or cannot be reached (a network error, a server error); retrying
    later may succeed."""


def check_key(key: str) -> str:
    """`key` if it is a valid key; InvalidKey otherwise."""
    if len(key) > 512 or not _KEY.match(key):
        raise InvalidKey(f"not a storage key: {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class BlobStat:
    """What a backend knows of a stored blob without reading it."""

    key: str
    size: int


class BlobStore(Protocol):
    """Where blobs live. Every method may raise StorageUnavailable and InvalidKey."""

    # Whether `put_file` keeps the file itself (a rename on the store's disk) rather than
    # copying its bytes: then its writer makes it durable as it writes it, so the put's own
    # sync has little left to wait for.
    adopts_files: bool

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Store the bytes `chunks` yields under `key` and return their count. All or nothing:
        until it returns, readers see the previous blob (or none); if it raises (the stream
        failed, IntegrityError when `sha256` is given and does not match, BlobTooLarge past
        `max_bytes`, a cancellation) nothing of it remains. Concurrent puts of one key each
        succeed and the last to finish wins. Never holds more than a bounded part of the
        stream in memory."""
        ...

    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Store the local file at `path` (hashed by the caller, who keeps the right to it
        until this returns) under `key` and return its size; the file may be moved into the
        store (local files on the same disk: a rename, no copy) or left where it was: the
        caller removes what remains. All or nothing, as `put`."""
        ...

    async def open_range(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The bytes `start <= i < end` of the blob (`end` is clipped to its size; None: to the
        end), as chunks of at most CHUNK_BYTES. Opening raises, before any byte is read,
        BlobNotFound, or RangeNotSatisfiable if `start` is past the end (`start == size` is an
        empty read); ValueError for `start < 0` or `end < start`. Iterate it to the end or
        `aclose()` it to release what it holds."""
        ...

    async def stat(self, key: str) -> BlobStat | None:
        """The blob's size; None if there is no blob under `key`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; idempotent (no blob: nothing happens)."""
        ...

    async def presigned_url(self, key: str, *, seconds: int, content_type: str) -> str | None:
        """A URL that lets anyone holding it GET the blob (with Range) for `seconds`, served
        as `content_type`; None where the backend has no such URLs (local files)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


async def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    """A whole range in memory: for tests and small blobs only."""
    parts = [chunk async for chunk in await store.open_range(key, start, end)]
    return b"".join(parts)


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"not a range: start {start}, end {end}")


async def read_file(path: Path) -> AsyncGenerator[bytes, None]:
    """A local file's bytes in chunks, read in a thread."""
    file: BinaryIO = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, 4 * CHUNK_BYTES):
            yield chunk
    finally:
        with contextlib.suppress(OSError):
            file.close()
