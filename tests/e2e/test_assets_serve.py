"""Audio assets against a real `jacameno serve` over real HTTP: on the embedded default (SQLite,
files) and on Postgres + Redis + S3 (moto). A browser-like client seeks in a track, dropping
each response part-way as a media element does; a 200 MB file goes in and out while the
server's resident memory is measured, on files only: what S3 holds of 200 MB is measured by the
storage conformance suite (tests/conformance/storage.py), and moto takes 10 s more to store it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.audio import wav_bytes, write_wav
from harness.s3 import S3Server
from harness.server import ServerProcess, serving
from harness.waiting import wait_until

MIB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(params=["files", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The database URL and the storage environment of each configuration."""
    environment = {"JACAMENO_MAX_UPLOAD_BYTES": str(300 * MIB)}
    if request.param == "files":
        path: Path = request.getfixturevalue("fresh_sqlite_path")
        return f"sqlite:///{path}", environment
    s3: S3Server = request.getfixturevalue("s3")
    database: str = request.getfixturevalue("fresh_pg_url")
    environment |= {
        **s3.environment(),
        "JACAMENO_REDIS_URL": request.getfixturevalue("redis_url"),
        "JACAMENO_STORAGE_URL": f"s3://{s3.create_bucket()}/audio",
        "JACAMENO_S3_ENDPOINT_URL": s3.endpoint_url,
        "JACAMENO_S3_REGION": s3.region,
    }
    return database, environment


@pytest.fixture
async def server(where: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[ServerProcess]:
    database, environment = where
    async with serving(database, tmp_path, environment) as process:
        yield process


async def test_a_browser_seeks_in_a_track(server: ServerProcess) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    body = wav_bytes(seconds=30, rate=22050)  # about 1.3 MB
    async with server.http() as http:
        answer = await http.post(
            f"/api/projects/{project}/assets",
            params={"name": "song.wav"},
            content=body,
            headers=owner.headers,
        )
        assert answer.status_code == 201, answer.text
        url = f"/api/assets/{answer.json()['id']}"
        size = len(body)
        # A media element asks for everything, reads the start, and drops the connection when
        # the listener seeks; then asks again from where they seeked to.
        for seek in (0, size // 3, size - 70_000, 2 * size // 3, 44):
            headers = {**owner.headers, "Range": f"bytes={seek}-"}
            async with http.stream("GET", url, headers=headers) as part:
                assert part.status_code == 206
                assert part.headers["content-range"] == f"bytes {seek}-{size - 1}/{size}"
                received = b""
                async for chunk in part.aiter_bytes():
                    received += chunk
                    if len(received) >= 64 * 1024:
                        break  # the listener seeks on
            assert received == body[seek : seek + len(received)]

        # Several listeners at once, each at its own place.
        async def listen(start: int) -> bytes:
            headers = {**owner.headers, "Range": f"bytes={start}-{start + 9999}"}
            return (await http.get(url, headers=headers)).content

        starts = list(range(0, size - 10_000, size // 20))
        parts = await asyncio.gather(*(listen(s) for s in starts))
        assert parts == [body[s : s + 10_000] for s in starts]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["files"], indirect=True)
async def test_200_mb_in_and_out_with_bounded_server_memory(
    server: ServerProcess, tmp_path: Path
) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    source = write_wav(tmp_path / "long.wav", 200 * MIB)
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    size = source.stat().st_size
    baseline = rss(server.pid)
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(server.pid))
            await asyncio.sleep(0.02)

    async def file_chunks() -> AsyncIterator[bytes]:
        with source.open("rb") as file:
            while chunk := file.read(MIB):
                yield chunk

    sampler = asyncio.create_task(sample())
    try:
        async with server.http(timeout=300) as http:
            answer = await http.post(
                f"/api/projects/{project}/assets",
                content=file_chunks(),
                headers={**owner.headers, "Content-Length": str(size)},
            )
            assert answer.status_code == 201, answer.text
            asset = answer.json()
            assert (asset["sha256"], asset["size"]) == (expected, size)
            back = hashlib.sha256()
            async with http.stream(
                "GET", f"/api/assets/{asset['id']}", headers=owner.headers
            ) as got:
                assert got.status_code == 200
                async for chunk in got.aiter_bytes():
                    back.update(chunk)
    finally:
        done.set()
        await sampler
    assert back.hexdigest() == expected
    grown = peak - baseline
    print(f"server RSS: {baseline // MIB} MiB before, {peak // MIB} MiB at the peak")
    assert grown < 80 * MIB, f"the server grew by {grown // MIB} MiB for a 200 MB file"


async def test_an_upload_cut_off_midway_leaves_nothing(server: ServerProcess) -> None:
    owner = await server.user("owner")
    project = await server.project(owner)
    body = wav_bytes(seconds=60, rate=22050)  # 2.6 MB
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = (
        f"POST /api/projects/{project}/assets HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {owner.token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    spool = server.data_dir / "spool"

    def spooling() -> bool:
        return spool.exists() and any(spool.iterdir())

    await wait_until(spooling, "the server spools the upload")
    writer.close()  # the client goes away mid-body
    await writer.wait_closed()
    await wait_until(lambda: not any(spool.iterdir()), "the spool is cleaned up")
    async with server.http() as http:
        listed = await http.get(f"/api/projects/{project}/assets", headers=owner.headers)
        assert listed.json() == {"assets": []}
        blobs = server.data_dir / "blobs" / "sha256"
        assert not blobs.exists() or not any(blobs.iterdir())
        # The same upload, whole, goes through.
        answer = await http.post(
            f"/api/projects/{project}/assets", content=body, headers=owner.headers
        )
        assert answer.status_code == 201, answer.text
