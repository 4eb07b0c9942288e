"""harness/latency_proxy.py: what the join benchmark's network latency rests on. Every byte arrives,
in order, each way no sooner than the delay after it was sent."""

from __future__ import annotations

import asyncio
import time

from harness.latency_proxy import delayed


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_round_trip_through_the_proxy_takes_twice_the_delay_and_keeps_every_byte() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with delayed("127.0.0.1", port, 0.05) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        started = time.monotonic()
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert time.monotonic() - started >= 0.1
        payload = bytes(range(256)) * 4096  # 1 MiB in many reads, echoed in order
        writer.write(payload)
        writer.write_eof()
        assert await reader.read() == payload
        writer.close()
    server.close()
    await server.wait_closed()
