"""The conformance suite of the `BlobStore` Protocol (jacameno.storage): every backend passes
all of it.

A backend's test module subclasses `StorageConformance` and provides the fixture `backend`, a
`Backend` over an empty place (a folder, a bucket). The large-file test measures this process's
resident memory while 200 MB go in and out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from harness.waiting import wait_until
from jacameno.http.ranges import Unsatisfiable, requested
from jacameno.storage import (
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    IntegrityError,
    InvalidKey,
    RangeNotSatisfiable,
    read_all,
)

MIB = 1024 * 1024
# Larger than one S3 part (5 MiB in the suite's stores), so that multipart uploads are tested.
MULTIPART = 11 * MIB + 123


class Backend(Protocol):
    name: str

    async def open(self) -> BlobStore:
        """A store on the backend's place (its parts 5 MiB where it has parts)."""
        ...

    async def unfinished(self) -> int:
        """How many unfinished puts the backend holds (partial files, multipart uploads)."""
        ...

    async def keys(self) -> set[str]:
        """Every key stored."""
        ...


def pattern(size: int, seed: int = 0) -> bytes:
    """`size` bytes that differ at every offset (a range at the wrong place reads differently)."""
    block = b"".join(hashlib.sha256(b"%d:%d" % (seed, i)).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def generated(total: int, chunk: int = MIB) -> AsyncIterator[bytes]:
    """`total` bytes made as they are read (never all in memory)."""
    block = pattern(chunk, seed=7)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


async def failing(data: bytes, after: int) -> AsyncIterator[bytes]:
    """`data` in chunks, then a failure once `after` bytes have been yielded."""
    sent = 0
    async for chunk in chunked(data, MIB):
        yield chunk
        sent += len(chunk)
        if sent >= after:
            raise ConnectionResetError("the client went away")


def rss() -> int:
    """This process's resident memory, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class StorageConformance:
    @pytest.fixture
    async def blobs(self, backend: Backend) -> AsyncIterator[BlobStore]:
        store = await backend.open()
        yield store
        await store.close()

    async def test_a_blob_reads_back_whole_with_its_hash(self, blobs: BlobStore) -> None:
        data = pattern(300_000)
        digest = hashlib.sha256(data).hexdigest()
        size = await blobs.put(
            "sha256/" + digest, chunked(data), content_type="audio/wav", sha256=digest
        )
        assert size == len(data)
        stat = await blobs.stat("sha256/" + digest)
        assert stat is not None
        assert stat.size == len(data)
        back = await read_all(blobs, "sha256/" + digest)
        assert hashlib.sha256(back).hexdigest() == digest

    async def test_ranges_at_every_edge(self, blobs: BlobStore) -> None:
        data = pattern(1000)
        await blobs.put("edges", chunked(data, 100))
        size = len(data)
        cases = {
            "bytes=0-0": data[:1],  # first byte
            "bytes=999-999": data[-1:],  # last byte
            "bytes=999-": data[-1:],
            "bytes=-1": data[-1:],  # suffix ranges
            "bytes=-10": data[-10:],
            "bytes=-5000": data,  # a suffix longer than the blob: all of it
            "bytes=0-": data,
            "bytes=500-20000": data[500:],  # an end past the end: up to the end
            "bytes=123-456": data[123:457],
        }
        for header, expected in cases.items():
            wanted = requested(header, size)
            assert wanted is not None
            got = await read_all(blobs, "edges", wanted.start, wanted.end)
            assert got == expected, header
        for header in ("bytes=1000-", "bytes=1000-1001", "bytes=-0", "bytes=5-4", "bytes=x"):
            with pytest.raises(Unsatisfiable):
                requested(header, size)
        assert await read_all(blobs, "edges", size) == b""  # at the end: empty
        assert await read_all(blobs, "edges", 10, 10) == b""
        with pytest.raises(RangeNotSatisfiable) as past:
            await blobs.open_range("edges", size + 1)
        assert past.value.size == size
        with pytest.raises(ValueError, match="not a range"):
            await blobs.open_range("edges", 5, 4)

    async def test_a_local_file_is_stored_as_it_is(self, blobs: BlobStore, tmp_path: Path) -> None:
        data = pattern(3 * MIB + 5, seed=7)
        source = tmp_path / "spooled"
        source.write_bytes(data)
        assert await blobs.put_file("sha256/file", source, content_type="audio/wav") == len(data)
        assert await read_all(blobs, "sha256/file") == data
        assert await read_all(blobs, "sha256/file", 3 * MIB, 3 * MIB + 5) == data[-5:]
        stat = await blobs.stat("sha256/file")
        assert stat is not None
        assert stat.size == len(data)

    async def test_a_missing_blob_is_not_found(self, blobs: BlobStore) -> None:
        assert await blobs.stat("nothing/here") is None
        with pytest.raises(BlobNotFound):
            await blobs.open_range("nothing/here")
        with pytest.raises(BlobNotFound):
            await blobs.open_range("nothing/here", 0, 0)

    async def test_an_empty_blob_is_a_blob(self, blobs: BlobStore) -> None:
        assert await blobs.put("empty", chunked(b"")) == 0
        stat = await blobs.stat("empty")
        assert stat is not None
        assert stat.size == 0
        assert await read_all(blobs, "empty") == b""

    async def test_a_multipart_blob_reads_back_and_across_parts(self, blobs: BlobStore) -> None:
        data = pattern(MULTIPART, seed=1)
        digest = hashlib.sha256(data).hexdigest()
        await blobs.put("big", chunked(data, 300_000), sha256=digest)
        assert hashlib.sha256(await read_all(blobs, "big")).hexdigest() == digest
        across = 5 * MIB - 10
        assert await read_all(blobs, "big", across, across + 20) == data[across : across + 20]
        # From the middle, to the end and to a bound: S3 reads these in several ranged GETs.
        assert await read_all(blobs, "big", MIB // 2) == data[MIB // 2 :]
        assert await read_all(blobs, "big", 3, 10 * MIB + 7) == data[3 : 10 * MIB + 7]

    async def test_a_wrong_hash_stores_nothing(self, blobs: BlobStore, backend: Backend) -> None:
        for size in (1000, MULTIPART):
            with pytest.raises(IntegrityError):
                await blobs.put("wrong", chunked(pattern(size)), sha256="0" * 64)
            assert await blobs.stat("wrong") is None
        assert await backend.unfinished() == 0

    async def test_too_many_bytes_store_nothing(self, blobs: BlobStore, backend: Backend) -> None:
        with pytest.raises(BlobTooLarge):
            await blobs.put("large", chunked(pattern(MULTIPART)), max_bytes=MULTIPART - 1)
        assert await blobs.stat("large") is None
        assert await backend.unfinished() == 0

    async def test_an_interrupted_put_leaves_nothing(
        self, blobs: BlobStore, backend: Backend
    ) -> None:
        data = pattern(MULTIPART)
        with pytest.raises(ConnectionResetError):
            await blobs.put("cut", failing(data, after=len(data) - MIB))
        assert await blobs.stat("cut") is None
        assert await backend.unfinished() == 0
        assert await backend.keys() == set()

    async def test_a_cancelled_put_leaves_nothing(self, blobs: BlobStore, backend: Backend) -> None:
        started = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            async for chunk in chunked(pattern(MULTIPART), MIB):
                yield chunk
            started.set()
            await asyncio.Event().wait()  # the client stalls: the put is cancelled
            yield b"never"

        task = asyncio.create_task(blobs.put("cancelled", slow()))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await blobs.stat("cancelled") is None

        async def none_left() -> bool:
            return await backend.unfinished() == 0

        await wait_until(none_left, "the cancelled put left nothing")
        assert await backend.keys() == set()

    async def test_a_failed_put_keeps_the_previous_blob(self, blobs: BlobStore) -> None:
        first = pattern(1000, seed=2)
        await blobs.put("kept", chunked(first))
        with pytest.raises(ConnectionResetError):
            await blobs.put("kept", failing(pattern(MULTIPART), after=2 * MIB))
        assert await read_all(blobs, "kept") == first

    async def test_concurrent_puts_of_the_same_content(
        self, blobs: BlobStore, backend: Backend
    ) -> None:
        data = pattern(MULTIPART, seed=3)
        digest = hashlib.sha256(data).hexdigest()
        key = "sha256/" + digest
        sizes = await asyncio.gather(
            *(blobs.put(key, chunked(data, 512 * 1024), sha256=digest) for _ in range(4))
        )
        assert sizes == [len(data)] * 4
        assert hashlib.sha256(await read_all(blobs, key)).hexdigest() == digest
        assert await backend.keys() == {key}
        assert await backend.unfinished() == 0

    async def test_delete_is_idempotent(self, blobs: BlobStore) -> None:
        await blobs.put("gone", chunked(b"abc"))
        await blobs.delete("gone")
        await blobs.delete("gone")
        assert await blobs.stat("gone") is None
        with pytest.raises(BlobNotFound):
            await blobs.open_range("gone")

    @pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "a b", "a/", ".hidden"])
    async def test_keys_outside_the_grammar_are_refused(self, blobs: BlobStore, key: str) -> None:
        with pytest.raises(InvalidKey):
            await blobs.put(key, chunked(b"x"))
        with pytest.raises(InvalidKey):
            await blobs.stat(key)
        with pytest.raises(InvalidKey):
            await blobs.open_range(key)

    async def test_a_reader_can_stop_early(self, blobs: BlobStore) -> None:
        data = pattern(MULTIPART)
        await blobs.put("early", chunked(data, MIB))
        stream = await blobs.open_range("early")
        first = await anext(stream)
        assert data.startswith(first)
        await stream.aclose()  # releases the file or the connection
        assert await read_all(blobs, "early", 0, 10) == data[:10]

    async def test_a_presigned_url_serves_ranges_where_there_is_one(
        self, blobs: BlobStore, backend: Backend
    ) -> None:
        data = pattern(5000)
        await blobs.put("signed", chunked(data))
        url = await blobs.presigned_url("signed", seconds=60, content_type="audio/wav")
        if backend.name == "local":
            assert url is None  # local files have no URLs of their own: the API streams them
            return
        assert url is not None
        async with httpx.AsyncClient() as http:
            answer = await http.get(url, headers={"Range": "bytes=100-199"})
        assert answer.status_code == 206
        assert answer.content == data[100:200]
        assert answer.headers["content-type"] == "audio/wav"

    @pytest.mark.slow
    async def test_200_mb_in_and_out_with_bounded_memory(self, blobs: BlobStore) -> None:
        total = 200 * MIB
        expected = hashlib.sha256()
        async for chunk in generated(total):
            expected.update(chunk)
        baseline = rss()
        peak = baseline
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            size = await blobs.put("huge", generated(total), sha256=expected.hexdigest())
            assert size == total
            back = hashlib.sha256()
            async for chunk in await blobs.open_range("huge"):
                back.update(chunk)
        finally:
            done.set()
            await sampler
        assert back.hexdigest() == expected.hexdigest()
        # A part (S3) or a chunk (files) at a time, plus the runtime's own churn: far less than
        # the 200 MB that went through.
        assert peak - baseline < 64 * MIB, f"grew by {(peak - baseline) // MIB} MiB"
