"""Audio assets benchmark: `python -m load.bench_assets [--size-mb 50] [--listeners 200] [--s3]`.

Starts `jacameno serve` (embedded SQLite and files; with `--s3`, blobs in a moto S3 server it
starts too) and a plain file server (load/plain_server.py) on free ports, then measures in one
run, on the same machine, `--repeats` rounds (5) interleaved, the order of ours and plain
swapped every round:

- the raw disk: copying the test file (read, write, fsync), in MB/s;
- upload: `POST /api/projects/{id}/assets` of a WAV of `--size-mb` (hashed, header read,
  stored), beside a plain `PUT` of the same bytes to the plain server and a `PUT` whose bytes
  it drops (the ceiling: what this machine's uvicorn receives when nothing else is done); the
  file's last bytes change every round, so each upload is new content (stored, not found stored
  already);
- streaming: `GET /api/assets/{id}` whole, beside the plain server's `GET`;
- seeking, once after the rounds: `--listeners` concurrent listeners, each seeking `--seeks`
  times (a `Range: bytes=N-` request whose first 64 KiB it reads before dropping it, as a media
  element does): p50/p99 time to the first byte, against us and against the plain server (httpx
  clients).

Uploads and downloads are made by `--client` (curl where installed, load/transfers.py). Each
throughput is printed as the median of the rounds (min-max), and as ratios to the raw disk copy
and to the plain server taken within each round (the issue's target: at least 0.5 of the raw
rate), with the machine's load average before and after. `--quick` is a smoke run of a few
seconds. Figures belong in docs/benchmarks.md, beside the load they were measured under."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from harness import accounts
from harness.audio import write_wav
from harness.s3 import s3_server
from harness.server import ServerProcess
from harness.settings import new_jwt_secret
from load import transfers
from load.plain_server import plain_server
from load.stats import percentile

MIB = 1024 * 1024
FIRST_BYTES = 64 * 1024  # what a seeking listener reads before it seeks again
SERIES = ("raw", "upload", "plain_upload", "sink_upload", "stream", "plain_stream")


def raw_copy(source: Path, target: Path) -> float:
    """Copy `source` a MiB at a time and fsync: the disk's rate in MB/s."""
    started = time.perf_counter()
    with source.open("rb") as reading, target.open("wb") as writing:
        while chunk := reading.read(MIB):
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return source.stat().st_size / MIB / seconds


def stamp(path: Path, round_: int) -> None:
    """Make the file's content new (its last 16 bytes, audio samples) without rewriting it:
    each round's upload is then stored, never found already stored by its hash."""
    size = path.stat().st_size
    mark = round_.to_bytes(8, "little") + random.randbytes(8)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, mark, size - len(mark))
    finally:
        os.close(fd)


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


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
    samples: dict[str, list[float]] = {name: [] for name in SERIES}
    load_before = os.getloadavg()
    async with server, plain_server(plain_folder) as plain:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
            owner = await accounts.new_user(http, "bench")
            project = await accounts.new_project(http, owner)
        upload_url = f"{server.url}/api/projects/{project}/assets"
        url = ""

        async def upload_ours() -> None:
            nonlocal url
            done = await transfers.upload(
                args.client, "POST", upload_url, source, size, owner.headers
            )
            samples["upload"].append(done.mb_s)
            url = f"/api/assets/{json.loads(done.body)['id']}"

        async def upload_plain() -> None:
            done = await transfers.upload(args.client, "PUT", f"{plain}/file", source, size, {})
            samples["plain_upload"].append(done.mb_s)

        async def upload_sink() -> None:
            done = await transfers.upload(args.client, "PUT", f"{plain}/sink", source, size, {})
            samples["sink_upload"].append(done.mb_s)

        async def stream_ours() -> None:
            done = await transfers.download(args.client, f"{server.url}{url}", owner.headers, size)
            samples["stream"].append(done.mb_s)

        async def stream_plain() -> None:
            done = await transfers.download(args.client, f"{plain}/file", {}, size)
            samples["plain_stream"].append(done.mb_s)

        steps = [[upload_ours, upload_plain, upload_sink], [stream_ours, stream_plain]]
        for round_ in range(args.repeats):
            stamp(source, round_)
            samples["raw"].append(raw_copy(source, folder / "raw-copy.wav"))
            # Interleaved, the order swapped every round: a load that comes and goes, or a
            # cache one of them warms for the other, weighs on both alike.
            for step in steps:
                for transfer in reversed(step) if round_ % 2 else step:
                    await transfer()
        seek_ours = await seeking(server.url, url, owner.headers, size, args.listeners, args.seeks)
        seek_plain = await seeking(plain, "/file", {}, size, args.listeners, args.seeks)
    figures: dict[str, Any] = {
        "size_mb": round(size / MIB, 1),
        "client": args.client,
        "repeats": args.repeats,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        **{f"{name}_mb_s": summary(values) for name, values in samples.items()},
    }
    for what in ("upload", "stream"):
        # Each ratio is taken within a round (the same minute's load), then its median.
        ours_, plain_, raw = samples[what], samples[f"plain_{what}"], samples["raw"]
        figures[f"{what}_vs_raw"] = summary([o / r for o, r in zip(ours_, raw, strict=True)])
        figures[f"{what}_vs_plain"] = summary([o / p for o, p in zip(ours_, plain_, strict=True)])
    figures["upload_vs_sink"] = summary(
        [o / c for o, c in zip(samples["upload"], samples["sink_upload"], strict=True)]
    )
    figures.update({"listeners": args.listeners, "seeking": seek_ours, "plain_seeking": seek_plain})
    return figures


def _spread(figure: dict[str, Any], form: str) -> str:
    return f"{figure['median']:{form}} ({figure['min']:{form}}-{figure['max']:{form}})"


def report(label: str, figures: dict[str, Any]) -> None:
    before = ", ".join(f"{x:.2f}" for x in figures["load_before"])
    after = ", ".join(f"{x:.2f}" for x in figures["load_after"])
    print(f"JACAMENO assets benchmark: {label}, a {figures['size_mb']} MB WAV")
    print(
        f"  client {figures['client']}, {figures['repeats']} interleaved rounds, median (min-max)"
        f"\n  load average before {before}; after {after}"
    )
    print(f"  raw disk copy   {_spread(figures['raw_mb_s'], '.0f')} MB/s")
    for what in ("upload", "stream"):
        print(
            f"  {what:<8} ours {_spread(figures[f'{what}_mb_s'], '.0f')} MB/s"
            f"   plain {_spread(figures[f'plain_{what}_mb_s'], '.0f')} MB/s"
        )
        if what == "upload":
            print(
                f"           sink {_spread(figures['sink_upload_mb_s'], '.0f')} MB/s"
                " (a plain PUT that drops the bytes: the stack's ceiling)"
            )
        print(
            f"           ratio to raw {_spread(figures[f'{what}_vs_raw'], '.2f')}"
            f"   to plain {_spread(figures[f'{what}_vs_plain'], '.2f')}"
            + (
                f"   to sink {_spread(figures['upload_vs_sink'], '.2f')}"
                if what == "upload"
                else ""
            )
        )
    for name, key in (("ours", "seeking"), ("plain", "plain_seeking")):
        seek = figures[key]
        print(
            f"  seeking  {name:<5} {figures['listeners']} listeners, {seek['seeks']} seeks"
            f"  {seek['seeks_per_s']:>7.1f}/s  TTFB p50 {seek['ttfb_p50_ms']:.1f} ms"
            f"  p99 {seek['ttfb_p99_ms']:.1f} ms (httpx)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--seeks", type=int, default=5, help="per listener")
    parser.add_argument("--s3", action="store_true", help="blobs in a moto S3 server")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--client",
        choices=transfers.CLIENTS,
        default=transfers.default_client(),
        help="the client of uploads and downloads (default: curl if installed)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 MB, 20 listeners")
    parser.add_argument("--results", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.listeners, args.seeks, args.repeats = 4, 20, 2, 3
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
