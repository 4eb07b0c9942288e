"""A TCP proxy that delays every byte by a fixed time in each direction: a network's latency on
loopback, where this machine's kernel has no netem (`tc qdisc ... netem` is refused).

`async with delayed(host, port, one_way) as proxy_port` listens on a free loopback port; each
connection to it opens one to (host, port) and forwards what either side sends `one_way`
seconds after it arrived, in order, so a round trip through it takes `2 * one_way` more. The
TCP handshake itself is not delayed (the proxy answers it at once): what a client times from
its connect counts the requests and answers it waits for, each one round trip."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

_CHUNK = 64 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, one_way: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(_CHUNK):
            queue.put_nowait((loop.time() + one_way, data))
    except OSError:
        pass
    finally:
        queue.put_nowait((loop.time() + one_way, b""))
        with contextlib.suppress(OSError):
            await delivering


async def _connection(
    upstream: tuple[str, int],
    one_way: float,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pump(client_reader, server_writer, one_way),
            _pump(server_reader, client_writer, one_way),
        )
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


@contextlib.asynccontextmanager
async def delayed(host: str, port: int, one_way: float) -> AsyncIterator[int]:
    """A proxy to (host, port) adding `one_way` seconds each way; yields its port."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _connection((host, port), one_way, reader, writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
