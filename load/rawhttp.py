"""A minimal HTTP/1.1 keep-alive client for load generators: one connection sends a request and
reads its response (status line, headers, a `Content-Length` body) before the next, with nothing
else in the way. httpx spends about a millisecond of the client's CPU per request: on a 2-core
machine the clients of a plays benchmark then measured themselves, not the server (the plain
Starlette server answered them no faster than ours). This one costs a few tens of microseconds.

Only what the benchmarks send and get: no chunked bodies, no redirects, no TLS."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection broke or the response was not HTTP/1.1 as this client reads it."""


class Connection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; the status and the response body."""
        if self._writer is None or self._reader is None:
            await self.open()
        assert self._writer is not None
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            await self.close()
            raise HttpError(f"no response: {exc!r}") from exc
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            await self.close()
            raise HttpError(f"not an HTTP status line: {lines[0]!r}") from exc
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        try:
            content = await self._reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, OSError) as exc:
            await self.close()
            raise HttpError(f"body cut short: {exc!r}") from exc
        if close:
            await self.close()
        return status, content
