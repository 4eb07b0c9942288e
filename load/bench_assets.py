"""Audio assets benchmark: `python -m load.bench_assets [--size-mb 50] [--listeners 200] [--s3]`.

Starts `jacameno serve` (embedded SQLite and files; with `--s3`, blobs in a moto S3 server it
starts too) and a plain file server (load/plain_server.py) on free ports, then measures in one
run, on the same machine:

- the raw disk: copying the test file (read, write, fsync), in MB/s;
- upload: `POST /api/projects/{id}/assets` of a WAV of `--size-mb` (hashed, header read,
  stored), beside a plain `PUT` of the same bytes to the plain server;
- streaming: `GET /api/assets/{id}` whole, beside the plain server's `GET`;
- seeking: `--listeners` concurrent listeners, each seeking `--seeks` times (a `Range:
  bytes=N-` request whose first 64 KiB it reads before dropping it, as a media element does):
  p50/p99 time to the first byte, against us and against the plain server.

Throughputs are also given as ratios to the raw disk copy and to the plain server (the issue's
target: at least 0.5 of the raw rate). `--quick` is a smoke run of a few seconds. Figures belong
in docs/benchmarks.md, measured on a quiet machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from harness import accounts
from harness.audio import write_wav
from harness.s3 import s3_server
from harness.server import ServerProcess
from harness.settings import new_jwt_secret
from load.plain_server import plain_server
from load.stats import percentile

MIB = 1024 * 1024
FIRST_BYTES = 64 * 1024  # what a seeking listener reads before it seeks again


def raw_copy(source: Path, target: Path) -> float:
    """Copy `source` a MiB at a time and fsync: the disk's rate in MB/s."""
    started = time.perf_counter()
    with source.open("rb") as reading, target.open("wb") as writing:
        while chunk := reading.read(MIB):
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    return source.stat().st_size / MIB / (time.perf_counter() - started)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            yield chunk


async def timed_upload(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    path: Path,
    size: int,
    headers: dict[str, str],
) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = await http.request(
        method,
        url,
        content=file_chunks(path),
        headers={**headers, "Content-Length": str(size)},
    )
    return size / MIB / (time.perf_counter() - started), answer


async def timed_download(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    received = 0
    started = time.perf_counter()
    async with http.stream("GET", url, headers=headers) as answer:
        answer.raise_for_status()
        async for chunk in answer.aiter_raw():
            received += len(chunk)
    return received / MIB / (time.perf_counter() - started)


async def seeking(
    base: str, url: str, headers: dict[str, str], size: int, listeners: int, seeks: int
) -> dict[str, float]:
    """`listeners` concurrent listeners seeking `seeks` times each: time to first byte."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=listeners, max_keepalive_connections=listeners)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:

        async def listener(n: int) -> None:
            places = random.Random(n)
            for _ in range(seeks):
                start = places.randrange(0, max(1, size - FIRST_BYTES))
                wanted = {**headers, "Range": f"bytes={start}-"}
                began = time.perf_counter()
                async with http.stream("GET", url, headers=wanted) as answer:
                    if answer.status_code != 206:
                        raise RuntimeError(f"seek answered {answer.status_code}")
                    first = True
                    read = 0
                    async for chunk in answer.aiter_raw():
                        if first:
                            latencies.append(time.perf_counter() - began)
                            first = False
                        read += len(chunk)
                        if read >= FIRST_BYTES:
                            break

        started = time.perf_counter()
        await asyncio.gather(*(listener(n) for n in range(listeners)))
        seconds = time.perf_counter() - started
    return {
        "seeks": len(latencies),
        "seeks_per_s": len(latencies) / seconds,
        "ttfb_p50_ms": percentile(latencies, 50) * 1000,
        "ttfb_p99_ms": percentile(latencies, 99) * 1000,
    }


async def bench(args: argparse.Namespace, folder: Path, storage: dict[str, str]) -> dict[str, Any]:
    source = write_wav(folder / "bench.wav", args.size_mb * MIB, tone=440.0 + random.random())
    size = source.stat().st_size
    raw = raw_copy(source, folder / "raw-copy.wav")
    (folder / "raw-copy.wav").unlink()
    server = ServerProcess(
        f"sqlite:///{folder / 'bench.db'}",
        folder / "data",
        new_jwt_secret(),
        folder / "server.log",
        {
            "JACAMENO_AUTO_MIGRATE": "true",
            "JACAMENO_MAX_UPLOAD_BYTES": str(size + MIB),
            **storage,
        },
    )
    plain_folder = folder / "plain"
    plain_folder.mkdir()
    async with server, plain_server(plain_folder) as plain:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
            owner = await accounts.new_user(http, "bench")
            project = await accounts.new_project(http, owner)
            upload, answer = await timed_upload(
                http, "POST", f"/api/projects/{project}/assets", source, size, owner.headers
            )
            answer.raise_for_status()
            url = f"/api/assets/{answer.json()['id']}"
            download = await timed_download(http, url, owner.headers)
        async with httpx.AsyncClient(base_url=plain, timeout=600) as http:
            plain_upload, answer = await timed_upload(http, "PUT", "/file", source, size, {})
            answer.raise_for_status()
            plain_download = await timed_download(http, "/file", {})
        ours = await seeking(server.url, url, owner.headers, size, args.listeners, args.seeks)
        theirs = await seeking(plain, "/file", {}, size, args.listeners, args.seeks)
    return {
        "size_mb": round(size / MIB, 1),
        "raw_copy_mb_s": raw,
        "upload_mb_s": upload,
        "plain_upload_mb_s": plain_upload,
        "upload_vs_raw": upload / raw,
        "upload_vs_plain": upload / plain_upload,
        "stream_mb_s": download,
        "plain_stream_mb_s": plain_download,
        "stream_vs_raw": download / raw,
        "stream_vs_plain": download / plain_download,
        "listeners": args.listeners,
        "seeking": ours,
        "plain_seeking": theirs,
    }


def report(label: str, figures: dict[str, Any]) -> None:
    print(f"JACAMENO assets benchmark: {label}, a {figures['size_mb']} MB WAV")
    print(f"  raw disk copy            {figures['raw_copy_mb_s']:>8.1f} MB/s")
    for what in ("upload", "stream"):
        print(
            f"  {what:<8} ours {figures[f'{what}_mb_s']:>8.1f} MB/s"
            f"   plain {figures[f'plain_{what}_mb_s']:>8.1f} MB/s"
            f"   ratio to raw {figures[f'{what}_vs_raw']:.2f}"
            f"   to plain {figures[f'{what}_vs_plain']:.2f}"
        )
    for name, key in (("ours", "seeking"), ("plain", "plain_seeking")):
        seek = figures[key]
        print(
            f"  seeking  {name:<5} {figures['listeners']} listeners, {seek['seeks']} seeks"
            f"  {seek['seeks_per_s']:>7.1f}/s  TTFB p50 {seek['ttfb_p50_ms']:.1f} ms"
            f"  p99 {seek['ttfb_p99_ms']:.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--seeks", type=int, default=5, help="per listener")
    parser.add_argument("--s3", action="store_true", help="blobs in a moto S3 server")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 MB, 20 listeners")
    parser.add_argument("--results", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.listeners, args.seeks = 4, 20, 2
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        storage: dict[str, str] = {}
        label = "embedded (SQLite, files)"
        if args.s3:
            s3 = stack.enter_context(s3_server())
            storage = {
                **s3.environment(),
                "JACAMENO_STORAGE_URL": f"s3://{s3.create_bucket()}/bench",
                "JACAMENO_S3_ENDPOINT_URL": s3.endpoint_url,
            }
            os.environ.update(s3.environment())
            label = "SQLite, blobs on S3 (moto, in memory)"
        figures = asyncio.run(bench(args, folder, storage))
    report(label, figures)
    if args.results is not None:
        args.results.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
