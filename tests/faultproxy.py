"""A TCP proxy on the loopback in front of one Postgres, for fault tests that must not touch the
shared server: it can go silent (stop forwarding both ways and keep every socket open, as a link
that drops packets without a reset would), and it watches the server's ReadyForQuery messages
to tell the moment a backend waits for its client inside a transaction, the worst moment for a
node to stall."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# ReadyForQuery ('Z', length 5) with the transaction status 'T': in a transaction block.
_IN_TRANSACTION = b"Z\x00\x00\x00\x05T"
_IDLE = b"Z\x00\x00\x00\x05I"
_STARTUP_BYTES = 1024


@dataclass
class _Link:
    startup: bytearray = field(default_factory=bytearray)  # what the client sent first
    tail: bytes = b""  # the server's last bytes, for a message split across reads
    replies_in_transaction: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream` (host, port).

    `on_wait_in_transaction` is called (before the reply is forwarded) when a backend whose
    client's startup message contains `watch` has answered a statement inside a transaction,
    after the one that opened it, and waits for its client: a transaction that holds what its
    statements locked across a client round trip."""

    def __init__(self, upstream: tuple[str, int], watch: bytes = b"") -> None:
        self.upstream = upstream
        self.watch = watch
        self.on_wait_in_transaction: Callable[[], None] | None = None
        self.waits_in_transaction = 0
        self._open = asyncio.Event()
        self._open.set()
        self.silenced = asyncio.Event()  # set by silence(), cleared by resume()
        self._server: asyncio.Server | None = None
        self._links: list[_Link] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, dsn: str) -> str:
        """`dsn` with its host and port replaced by the proxy's."""
        parts = urlsplit(dsn)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def silent(self) -> bool:
        return not self._open.is_set()

    def silence(self) -> None:
        """Stop forwarding anything, both ways; the sockets stay open."""
        self._open.clear()
        self.silenced.set()

    def resume(self) -> None:
        self.silenced.clear()
        self._open.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.resume()
        if self._server is not None:
            self._server.close()
        for link in self._links:
            for writer in link.writers:
                writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writers=[writer])
        self._links.append(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        link.writers.append(up_writer)
        for task in (
            asyncio.create_task(self._pump(reader, up_writer, link, to_server=True)),
            asyncio.create_task(self._pump(up_reader, writer, link, to_server=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        to_server: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()
                if to_server:
                    if len(link.startup) < _STARTUP_BYTES:
                        link.startup += data[: _STARTUP_BYTES - len(link.startup)]
                else:
                    self._watch(link, data)
                    await self._open.wait()  # the hook may have silenced the link
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _watch(self, link: _Link, data: bytes) -> None:
        seen = link.tail + data
        link.tail = seen[-(len(_IN_TRANSACTION) - 1) :]
        if _IDLE in seen:
            link.replies_in_transaction = 0
        count = seen.count(_IN_TRANSACTION)
        if not count or self.watch not in link.startup:
            return
        link.replies_in_transaction += count
        if link.replies_in_transaction >= 2 and seen.endswith(_IN_TRANSACTION):
            self.waits_in_transaction += 1
            if self.on_wait_in_transaction is not None:
                self.on_wait_in_transaction()


@contextlib.asynccontextmanager
async def proxied(dsn: str, watch: bytes = b"") -> AsyncIterator[FaultProxy]:
    """A started FaultProxy in front of the server `dsn` names."""
    parts = urlsplit(dsn)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432), watch)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
