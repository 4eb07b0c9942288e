"""The resource-limit suite: a real `jacameno serve` flooded by clients that have no token holds
its memory (VmRSS of the process, sampled throughout) under a stated bound, and an editor in an
unrelated project keeps having its edits acknowledged within a stated bound meanwhile.

The flood, all at once: /hocuspocus sockets sending frames with unique document names (100 KB
each, and short ones); idle /hocuspocus sockets up to and past the node's bound on
unauthenticated sockets; HTTP requests whose headers arrive a byte at a time (slowloris); and a
request streaming an endless header. The limits are lowered so that the flood crosses each one
within the few seconds the test runs (docs/security.md gives the defaults)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pycrdt import Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from crdt.encoding import write_var_bytes, write_var_string, write_var_uint
from harness.ports import tcp_buffered
from harness.server import ServerProcess, serving
from harness.waiting import wait_until
from jacameno.collab import hocuspocus, protocol
from tests.e2e.clients import python_client

MIB = 1024 * 1024
RSS_GROWTH_BOUND = 150 * MIB  # over the RSS of the warmed-up server, at any sample
ACK_BOUND = 1.0  # seconds from an edit to its acknowledgement, for every edit
FLOOD_SECONDS = 3.0
LOBBY = 200  # unauthenticated sockets the node lets wait
IDLE_SOCKETS = LOBBY + 50
SLOW_REQUESTS = 200
HEADER_TIMEOUT = 2
AUTH_TIMEOUT = 3


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
async def server(fresh_sqlite_path: Path, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    environment = {
        "JACAMENO_COLLAB_MAX_UNAUTHENTICATED_SOCKETS": str(LOBBY),
        "JACAMENO_COLLAB_AUTH_TIMEOUT": str(AUTH_TIMEOUT),
        "JACAMENO_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    }
    async with serving(f"sqlite:///{fresh_sqlite_path}", tmp_path, environment) as process:
        yield process


async def _hocuspocus(server: ServerProcess) -> ClientConnection:
    return await connect(f"{server.ws_url}/hocuspocus", compression=None, max_size=None)


async def _names_flood(server: ServerProcess, until: float, name_bytes: int) -> int:
    """Frames with a new document name each, reconnecting whenever the server closes; the
    number of frames sent."""
    step1 = write_var_uint(hocuspocus.SYNC) + bytes((protocol.SYNC_STEP1,))
    step1 += write_var_bytes(b"\x00")
    sent = 0
    while time.monotonic() < until:
        ws = await _hocuspocus(server)
        try:
            while time.monotonic() < until:
                name = f"{uuid.uuid4().hex}".ljust(name_bytes, "n")
                await ws.send(write_var_string(name) + step1)
                sent += 1
                await asyncio.sleep(0)  # a send may not yield: let the editor's task run
        except ConnectionClosed:
            pass
        finally:
            await ws.close()
    return sent


async def _idle_sockets(server: ServerProcess) -> list[ClientConnection]:
    """IDLE_SOCKETS sockets that send nothing, once those past the lobby's bound are closed."""
    sockets = [await _hocuspocus(server) for _ in range(IDLE_SOCKETS)]
    await wait_until(
        lambda: sum(ws.close_code is not None for ws in sockets) >= IDLE_SOCKETS - LOBBY,
        "the sockets past the bound are closed",
        timeout=10,
    )
    return sockets


async def _slow_request(server: ServerProcess) -> bytes:
    """A request head sent a few bytes at a time; what the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        answer = asyncio.ensure_future(reader.read(4096))
        for _ in range(4 * HEADER_TIMEOUT * 2):
            done, _ = await asyncio.wait([answer], timeout=0.25)
            if done:
                break
            writer.write(b"X: y\r\n")
        return await asyncio.wait_for(answer, HEADER_TIMEOUT + 5)
    finally:
        writer.close()


async def _endless_header(server: ServerProcess) -> int:
    """Streams one header line up to 100 MB; how much was sent before the server cut it off."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Big: ")
    sent = 0
    chunk = b"a" * 65536
    try:
        while sent < 100 * MIB:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


@pytest.mark.slow
async def test_a_flood_without_a_token_holds_memory_and_other_rooms_keep_their_latency(
    server: ServerProcess,
) -> None:
    assert server.process is not None
    pid = server.process.pid
    alice = await server.user("alice")
    project = await server.project(alice)
    editor = await python_client(server, project, alice.token)
    lyrics = editor.doc.get("lyrics", type=Text)
    for i in range(20):  # warm up the room and the paths the flood takes
        lyrics.insert(0, f"{i};")
    await _slow_request(server)
    baseline = rss(pid)
    samples: list[int] = []
    latencies: list[float] = []
    until = time.monotonic() + FLOOD_SECONDS
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(rss(pid))
            await asyncio.sleep(0.05)

    async def edit() -> None:
        i = 0
        while not done.is_set():
            acknowledged = len(editor.echoes)
            started = time.monotonic()
            lyrics.insert(0, f"e{i};")
            while len(editor.echoes) == acknowledged:
                assert time.monotonic() - started < 10, "an edit was not acknowledged"
                await asyncio.sleep(0.002)
            latencies.append(time.monotonic() - started)
            i += 1
            await asyncio.sleep(0.05)

    async def flood() -> tuple[tuple[int, int, int], list[bytes], int, list[ClientConnection]]:
        try:
            frames, answers, header_sent = await asyncio.gather(
                asyncio.gather(
                    _names_flood(server, until, 100 * 1024),
                    _names_flood(server, until, 100 * 1024),
                    _names_flood(server, until, 250),
                ),
                asyncio.gather(*(_slow_request(server) for _ in range(SLOW_REQUESTS))),
                _endless_header(server),
            )
            # Then sockets that wait without a token, up to the lobby's bound and past it.
            return frames, answers, header_sent, await _idle_sockets(server)
        finally:
            done.set()

    results = await asyncio.gather(flood(), sample(), edit())
    (long_names, more_long_names, short_names), answers, header_sent, idle = results[0]

    print(
        f"RSS baseline {baseline / MIB:.0f} MiB, peak {max(samples) / MIB:.0f} MiB; frames "
        f"{long_names + more_long_names} long names, {short_names} short names; "
        f"{len(latencies)} edits, ack max {max(latencies) * 1000:.0f} ms, median "
        f"{statistics.median(latencies) * 1000:.0f} ms"
    )
    assert short_names > 1000
    assert max(samples) - baseline < RSS_GROWTH_BOUND
    assert max(latencies) < ACK_BOUND
    # Up to the lobby's bound the idle sockets wait; past it they are refused with 1013.
    codes = [ws.close_code for ws in idle if ws.close_code is not None]
    assert codes == [1013] * (IDLE_SOCKETS - LOBBY)
    # The slow requests are cut off with 408 when their time is up, the endless header early.
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    # (the server read at most 64 KiB of it; the rest is what the kernels' buffers took in)
    assert header_sent < MIB + tcp_buffered()
    # The waiting sockets are closed with 4401 once their deadline passes.
    for ws in idle:
        if ws.close_code == 1013:
            continue
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT + 5)
        assert ws.close_code == 4401
    with contextlib.suppress(InvalidStatus):
        await editor.close()
