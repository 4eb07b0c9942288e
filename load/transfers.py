"""Timed whole-file transfers for `load.bench_assets`: one upload (a body read from a file) or
one download (the answer's body counted and dropped), as MiB per second, by one of two clients.

- `curl` (the default where it is installed): a C client that does not cap the rate it
  measures. An upload is `--data-binary @file` (curl reads the file into memory before it
  connects, so its reading is not timed), a download goes to /dev/null; the time is curl's own
  `%{time_total}` (connect to last byte; the process's start is not in it).
- `httpx`: the Python client, which spends a core's worth of CPU on a fast transfer and may
  measure itself rather than the server: a second figure, not the reference.

Each transfer is a fresh connection, the same for the server under test and the plain one."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

MIB = 1024 * 1024
CLIENTS = ("curl", "httpx")


class TransferFailed(Exception):
    """The server answered an error, or the transfer moved fewer bytes than it should."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A finished transfer: its rate in MiB/s and the answer's body (uploads) or b""."""

    mb_s: float
    body: bytes


def default_client() -> str:
    return "curl" if shutil.which("curl") else "httpx"


async def upload(
    client: str, method: str, url: str, path: Path, size: int, headers: Mapping[str, str]
) -> Transfer:
    """Send `path`'s `size` bytes as the body of `method url`; TransferFailed unless a 2xx."""
    if client == "curl":
        status, seconds, sent, body = await _curl(
            ["-X", method, "--data-binary", f"@{path}"],
            url,
            {**headers, "Content-Type": "application/octet-stream"},
            "%{size_upload}",
        )
    else:
        async with httpx.AsyncClient(timeout=600) as http:
            started = time.perf_counter()
            response = await http.request(
                method,
                url,
                content=_file_chunks(path),
                headers={**headers, "Content-Length": str(size)},
            )
            seconds = time.perf_counter() - started
        status, sent, body = response.status_code, size, response.content
    if not 200 <= status < 300 or sent != size:
        raise TransferFailed(f"{method} {url}: {status}, {sent} of {size} bytes sent: {body!r}")
    return Transfer(size / MIB / seconds, body)


async def download(client: str, url: str, headers: Mapping[str, str], size: int) -> Transfer:
    """GET `url` whole, dropping the bytes; TransferFailed unless a 200 of `size` bytes."""
    if client == "curl":
        status, seconds, received, _ = await _curl(
            ["-o", "/dev/null"], url, headers, "%{size_download}"
        )
    else:
        received = 0
        async with httpx.AsyncClient(timeout=600) as http:
            started = time.perf_counter()
            async with http.stream("GET", url, headers=dict(headers)) as response:
                status = response.status_code
                async for chunk in response.aiter_raw():
                    received += len(chunk)
            seconds = time.perf_counter() - started
    if status != 200 or received != size:
        raise TransferFailed(f"GET {url}: {status}, {received} of {size} bytes")
    return Transfer(size / MIB / seconds, b"")


async def _curl(
    options: list[str], url: str, headers: Mapping[str, str], counted: str
) -> tuple[int, float, int, bytes]:
    """Run curl; the status, curl's `time_total`, the bytes `counted` names (written to
    stderr) and the answer's body (stdout, unless `options` send it elsewhere)."""
    # "Expect:" drops the 100-continue round trip curl asks for before a large body.
    header_options = [
        option for name, value in headers.items() for option in ("--header", f"{name}: {value}")
    ]
    process = await asyncio.create_subprocess_exec(
        "curl",
        "--silent",
        "--show-error",
        "--header",
        "Expect:",
        *header_options,
        *options,
        "--write-out",
        f"%{{stderr}}%{{http_code}} %{{time_total}} {counted}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise TransferFailed(f"curl {url}: {err.decode(errors='replace').strip()}")
    status, seconds, count = err.decode().split()
    return int(status), float(seconds), int(float(count)), out


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            yield chunk
