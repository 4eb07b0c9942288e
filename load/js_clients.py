"""The collaboration benchmarks' clients as a fleet that `load.bench_collab._drive` connects, runs
on a schedule, reads and closes: the Python clients of load/collab_client.py (`PythonFleet`), or
JavaScript yjs clients in one Node process (`JsFleet`, load/js/clients.mjs: the same edits made by
yjs and spoken in y-protocols' sync messages over a ws WebSocket, as a browser's client would).

The JavaScript clients report what they send and receive as it happens, timed by the monotonic
clock this process reads too (Node's process.hrtime and Python's perf_counter_ns are both
CLOCK_MONOTONIC on Linux), and it goes into the same Ledger as the Python clients' receipts: the
figures of both kinds of client are computed alike. Needs `make load/js/node_modules/.installed`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any, Protocol

from load import collab_server as srv
from load.collab_client import Client, Edit, Ledger

DRIVER = Path(__file__).parent / "js" / "clients.mjs"


class Fleet(Protocol):
    async def connect(self, indices: list[int]) -> None: ...

    async def run(self, rate: float, start: float, measure_from: float, stop: float) -> None: ...

    def sent(self) -> int: ...

    def seqs(self) -> list[int]: ...

    async def contents(self) -> list[dict[str, Any]]: ...

    def closed(self) -> dict[str, list[Any]]: ...

    async def close(self) -> None: ...


class PythonFleet:
    """load/collab_client.py's clients, in this process."""

    def __init__(self, clients: list[Client], concurrency: int) -> None:
        self._clients = clients
        self._concurrency = concurrency

    async def connect(self, indices: list[int]) -> None:
        await srv.gather_limited([self._clients[i].connect() for i in indices], self._concurrency)

    async def run(self, rate: float, start: float, measure_from: float, stop: float) -> None:
        await asyncio.gather(*(c.run(rate, start, measure_from, stop) for c in self._clients))

    def sent(self) -> int:
        return sum(c.sent for c in self._clients)

    def seqs(self) -> list[int]:
        return [c.seq for c in self._clients]

    async def contents(self) -> list[dict[str, Any]]:
        return [c.content() for c in self._clients]

    def closed(self) -> dict[str, list[Any]]:
        return {
            c.name: [c.close_code, c.close_reason]
            for c in self._clients
            if c.close_code is not None
        }

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients))


class JsFleet:
    """JavaScript clients (url, room, index in the room), one Node process for all."""

    def __init__(self, ledger: Ledger, specs: list[tuple[str, int, int]]) -> None:
        self._ledger = ledger
        self._specs = specs
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._window = (0, 0)  # measured window, perf_counter_ns
        self._sent: list[int] = [0] * len(specs)
        self._seqs: list[int] = [0] * len(specs)
        self._closed: dict[str, list[Any]] = {}

    async def start(self) -> None:
        if not (DRIVER.parent / "node_modules").is_dir():
            raise RuntimeError("the JavaScript clients need `make load/js/node_modules/.installed`")
        clients = [{"url": u, "room": r, "index": i} for u, r, i in self._specs]
        self._process = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            json.dumps(clients),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        self._reader = asyncio.create_task(self._read(), name="js-clients")

    async def _command(self, command: dict[str, Any], answer: str) -> Any:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        process.stdin.write(json.dumps(command).encode() + b"\n")
        await process.stdin.drain()
        while True:
            message = await self._answers.get()
            if "error" in message:
                raise RuntimeError(f"the JavaScript clients failed: {message['error']}")
            if answer in message:
                return message[answer]

    async def _read(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        async for line in process.stdout:
            message = json.loads(line)
            if "r" in message:
                self._received(*message["r"])
            elif "e" in message:
                self._edited(*message["e"])
            else:
                await self._answers.put(message)
        await self._answers.put({"error": f"the Node process ended ({await process.wait()})"})

    def _edited(self, n: int, seq: int, sent_ns: int, measured: bool) -> None:
        _, room, index = self._specs[n]
        edit = Edit(room, index, seq, sent_ns, measured)
        key = f"{room}.{index}:{seq}".encode()
        self._ledger.edits[key] = self._ledger.by_key[key] = edit
        if measured:
            self._ledger.window_edits += 1

    def _received(self, n: int, key: str, now_ns: int) -> None:
        """As load.collab_client.Client.handle counts an update frame it received."""
        ledger = self._ledger
        edit = ledger.by_key.get(key.encode())
        if edit is None:
            ledger.unknown += 1
            return
        _, room, index = self._specs[n]
        bit = 1 << index
        measuring = self._window[0] <= now_ns < self._window[1]
        if edit.room == room and edit.sender == index:
            if edit.acked_ns:
                ledger.duplicates += 1
                return
            edit.acked_ns = now_ns
            edit.received |= bit
            if edit.measured:
                ledger.acks.append((now_ns - edit.sent_ns) / 1e9)
            ledger.window_echoes += measuring
        elif edit.received & bit:
            ledger.duplicates += 1
        else:
            edit.received |= bit
            if edit.measured:
                ledger.fanout.append((now_ns - edit.sent_ns) / 1e9)
                ledger.fanout_sent.append(edit.sent_ns)
            ledger.window_deliveries += measuring

    async def connect(self, indices: list[int]) -> None:
        if self._process is None:
            await self.start()
        await self._command({"cmd": "connect", "clients": indices}, "connected")

    async def join(self, urls: list[str]) -> list[float]:
        """Fresh clients (none of the fleet's) open `urls` at the same moment: each one's
        seconds from the start of its connection to its sync step 2. They are closed then."""
        if self._process is None:
            await self.start()
        seconds: list[float] = await self._command({"cmd": "join", "urls": urls}, "joined")
        return seconds

    async def run(self, rate: float, start: float, measure_from: float, stop: float) -> None:
        times = [int(t * 1e9) for t in (start, measure_from, stop)]
        assert abs(time.perf_counter_ns() - int(time.perf_counter() * 1e9)) < 1_000_000
        self._window = (times[1], times[2])
        command = {
            "cmd": "run",
            "rate": rate,
            "start_ns": times[0],
            "measure_from_ns": times[1],
            "stop_ns": times[2],
        }
        ran = await self._command(command, "ran")
        self._sent, self._seqs = ran["sent"], ran["seq"]

    def sent(self) -> int:
        return sum(self._sent)

    def seqs(self) -> list[int]:
        return list(self._seqs)

    async def contents(self) -> list[dict[str, Any]]:
        answer = await self._command({"cmd": "contents"}, "contents")
        for n, code in answer["codes"].items():
            _, room, index = self._specs[int(n)]
            self._closed[f"{room}.{index}"] = code
        contents: list[dict[str, Any]] = answer["contents"]
        return contents

    def closed(self) -> dict[str, list[Any]]:
        """The clients the server closed (known once `contents` was read)."""
        return dict(self._closed)

    async def close(self) -> None:
        if self._process is None:
            return
        await self._command({"cmd": "close"}, "closed")
        await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
