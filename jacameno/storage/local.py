"""Blobs as files under a folder (the data folder's `blobs/` by default): the embedded default.

A put writes a temporary file in the folder's `.partial/`, fsyncs it, then renames it over the
key's path, so a reader sees the old file or the new one, never a part; an interrupted put
removes its temporary file (and one left by a killed process is swept at the next start). The
file I/O runs in worker threads: the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from jacameno.storage import (
    CHUNK_BYTES,
    BlobNotFound,
    BlobStat,
    BlobTooLarge,
    IntegrityError,
    RangeNotSatisfiable,
    StorageUnavailable,
    check_key,
    check_range,
    read_file,
)

logger = logging.getLogger(__name__)

PARTIAL = ".partial"
T = TypeVar("T")


class LocalBlobStore:
    """Blobs as files under `root` (made if missing)."""

    adopts_files = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self._partial = root / PARTIAL
        self._partial.mkdir(parents=True, exist_ok=True)
        for left in self._partial.iterdir():  # a killed process's unfinished puts
            left.unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        target = self._path(key)
        partial = self._partial / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        try:
            file = await _io(partial.open, "wb")
            try:
                # The stream's own errors pass as they are; only the disk's are translated.
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(f"{key}: more than {max_bytes} bytes")
                    digest.update(chunk)
                    await _io(file.write, chunk)
                await _io(_sync, file)
            finally:
                await _io(file.close)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise IntegrityError(f"{key}: the bytes do not hash to {sha256}")
            await _io(_publish, partial, target)
        finally:
            # Shielded from cancellation: an interrupted put must not leave its file behind.
            await asyncio.shield(asyncio.to_thread(partial.unlink, missing_ok=True))
        return size

    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> int:
        """A rename of the file into place when it is on the store's disk (after an fsync),
        else a copy (`put`)."""
        target = self._path(key)
        try:
            return await _io(_adopt, path, target)
        except _OtherDisk:
            return await self.put(key, read_file(path), content_type=content_type)

    async def open_range(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        check_range(start, end)
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"local storage: {exc}") from exc
        size = os.fstat(file.fileno()).st_size
        if start > size:
            file.close()
            raise RangeNotSatisfiable(key, size)
        stop = size if end is None else min(end, size)
        return _chunks(file, start, stop)

    async def stat(self, key: str) -> BlobStat | None:
        try:
            found = await asyncio.to_thread(self._path(key).stat)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"local storage: {exc}") from exc
        return BlobStat(key, found.st_size)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"local storage: {exc}") from exc

    async def presigned_url(self, key: str, *, seconds: int, content_type: str) -> str | None:
        check_key(key)
        return None

    async def close(self) -> None:
        return None


async def _io(call: Callable[..., T], *arguments: Any) -> T:
    """`call(*arguments)` in a worker thread, a failure of the disk as StorageUnavailable."""
    try:
        return await asyncio.to_thread(call, *arguments)
    except OSError as exc:
        raise StorageUnavailable(f"local storage: {exc}") from exc


def _sync(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


class _OtherDisk(Exception):
    """The file is on another file system than the store: it cannot be renamed into it."""


def _adopt(path: Path, target: Path) -> int:
    """Make `path`'s bytes durable and rename it to `target`; its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.stat().st_dev != target.parent.stat().st_dev:
        raise _OtherDisk(str(path))
    with path.open("rb+") as file:
        os.fsync(file.fileno())
        size = os.fstat(file.fileno()).st_size
    try:
        _publish(path, target)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise _OtherDisk(str(path)) from exc
        raise
    return size


def _publish(partial: Path, target: Path) -> None:
    """Rename the finished file into place and make the rename durable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def _chunks(file: BinaryIO, start: int, stop: int) -> AsyncGenerator[bytes, None]:
    try:
        position = start
        await asyncio.to_thread(file.seek, start)
        while position < stop:
            chunk = await asyncio.to_thread(file.read, min(CHUNK_BYTES, stop - position))
            if not chunk:  # the file shrank under us: never the case for a put's rename
                raise StorageUnavailable("local storage: the file ended early")
            position += len(chunk)
            yield chunk
    finally:
        file.close()
