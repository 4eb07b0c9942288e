"""The JavaScript Yjs client (tests/e2e/js/client.mjs: yjs with y-websocket's or Hocuspocus's
provider, on Node) as a subprocess driven over JSON lines; the Python client (pycrdt, from the
collaboration integration tests) pointed at a server process; waiting until they converge."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Array, Doc, Map, Text

from harness.accounts import User
from harness.server import ServerProcess
from harness.waiting import eventually, wait_until
from tests.e2e import documents
from tests.integration.collab.support import YClient

JS_DIR = Path(__file__).parent / "js"
CLIENT = JS_DIR / "client.mjs"
INSTALLED = JS_DIR / "node_modules" / ".installed"
TIMEOUT = 10.0

Event = dict[str, Any]


# An answer is one line of JSON: a document's state may be megabytes (asyncio's default: 64 KiB).
STDOUT_LINE_BYTES = 64 * 1024 * 1024


class JSClient:
    """One Node process with one Y.Doc and one WebsocketProvider. Requests fail the test with the
    client's own error (which includes its connection and acknowledgement state)."""

    def __init__(self, name: str, stderr: Path) -> None:
        self.name = name
        self.stderr_path = stderr
        self.events: list[Event] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def start(self) -> None:
        with self.stderr_path.open("ab") as stderr:
            self._process = await asyncio.create_subprocess_exec(
                "node",
                str(CLIENT),
                cwd=JS_DIR,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=STDOUT_LINE_BYTES,
            )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            message = json.loads(line)
            if "id" in message:
                answer = self._answers.pop(message["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result(message)
            else:
                self.events.append(message)
                self._changed.set()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(AssertionError(f"{self.name}: the Node client exited"))

    async def request(self, cmd: str, timeout: float = TIMEOUT, **args: Any) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None
        request_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._answers[request_id] = answer
        line = json.dumps({"id": request_id, "cmd": cmd, **args}) + "\n"
        self._process.stdin.write(line.encode())
        await self._process.stdin.drain()
        try:
            result: dict[str, Any] = await asyncio.wait_for(answer, timeout + 2)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no answer to {cmd} in {timeout} s") from None
        if not result["ok"]:
            raise AssertionError(f"{self.name}: {cmd} failed: {result['error']}")
        return result

    # -- commands -----------------------------------------------------------------------------

    async def connect(
        self,
        ws_url: str,
        project_id: str,
        token: str,
        dialect: str = "y-websocket",
        *,
        session_awareness: bool = False,
        renewal_token: str | None = None,
    ) -> None:
        """Open the provider (or reconnect it): y-websocket's on ws_url/collab/{project_id}
        ?token=..., or with `dialect="hocuspocus"` @hocuspocus/provider's on ws_url/hocuspocus
        (document name: the project id, `<project id>\\0<session>` with `session_awareness`; the
        token in its auth message); "hocuspocus-v2" and "hocuspocus-v3" are the providers of those
        generations (npm aliases). `renewal_token`: what a Hocuspocus provider answers when it
        is asked for a token again (as one that fetches a fresh token each time would)."""
        endpoint = "hocuspocus" if dialect.startswith("hocuspocus") else "collab"
        await self.request(
            "connect",
            url=f"{ws_url}/{endpoint}",
            room=project_id,
            token=token,
            dialect=dialect,
            session_awareness=session_awareness,
            renewal_token=renewal_token,
        )

    async def set_token(self, token: str) -> None:
        """The token a Hocuspocus provider sends from now on (asked by the server to renew)."""
        await self.request("set_token", token=token)

    async def disconnect(self) -> None:
        await self.request("disconnect")

    async def wait_synced(self, timeout: float = TIMEOUT) -> None:
        await self.request("wait_synced", timeout, timeout_ms=int(timeout * 1000))

    async def wait_settled(self, timeout: float = TIMEOUT) -> None:
        """Wait until every local change is acknowledged (durable on the server)."""
        await self.request("wait_settled", timeout, timeout_ms=int(timeout * 1000))

    async def wait_acked(self, count: int, timeout: float = TIMEOUT) -> None:
        """Wait until the echoes of `count` local updates came back."""
        await self.request("wait_acked", timeout, count=count, timeout_ms=int(timeout * 1000))

    async def edit(self, *ops: list[Any]) -> None:
        """Apply `ops` in one transaction; see `operations` in client.mjs."""
        await self.request("edit", ops=list(ops))

    async def start_typing(self, text: str, delete_every: int = 0, interval_ms: int = 0) -> None:
        """Type `text` in the background, one character per transaction, deleting every
        `delete_every`th character typed."""
        await self.request(
            "start_typing", text=text, delete_every=delete_every, interval_ms=interval_ms
        )

    async def stop_typing(self) -> int:
        typed: int = (await self.request("stop_typing"))["typed"]
        return typed

    async def state(self) -> ClientState:
        return ClientState(await self.request("state"))

    async def open(self, update: bytes) -> dict[str, Any]:
        """The JSON of a new Y.Doc (this client's Yjs) to which `update` is applied."""
        opened: dict[str, Any] = (
            await self.request("open", update=base64.b64encode(update).decode())
        )["json"]
        return opened

    async def measure(self) -> dict[str, Any]:
        """The lyrics' length, the meta keys and the sync summary, without copying the
        document (for large ones)."""
        return await self.request("measure")

    async def wait_event(self, check: Callable[[Event], bool], timeout: float = TIMEOUT) -> Event:
        async def find() -> Event:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if check(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name}: event not seen; events: {self.events}") from None

    async def close(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            with contextlib.suppress(AssertionError, ConnectionError):
                await self.request("exit", timeout=2)
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            await self._reader


class ClientState:
    """What a JS client reports about its document."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.json: dict[str, Any] = raw["json"]
        self.client_id: int = raw["client_id"]
        self.update = base64.b64decode(raw["update"])
        self.durable = base64.b64decode(raw["durable"])
        self.acked = [base64.b64decode(u) for u in raw["acked"]]
        self.unacked: int = raw["unacked"]


async def python_client(server: ServerProcess, project_id: str, token: str) -> YClient:
    client = YClient(server, project_id, token)  # type: ignore[arg-type]
    await client.connect()
    await client.sync()
    return client


async def python_settled(client: YClient) -> None:
    """Every update the Python client sent came back as an echo (is durable)."""
    await eventually(lambda: set(client.sent) <= set(client.echoes))


async def converged(js: list[JSClient], python: list[YClient]) -> dict[str, Any]:
    """Wait until every client shows the same document; return it (normalized)."""
    seen: list[dict[str, Any]] = []

    async def same() -> bool:
        states = await asyncio.gather(*(c.state() for c in js))
        seen[:] = [documents.from_json(s.json) for s in states]
        seen.extend(documents.from_doc(c.doc) for c in python)
        return all(s == seen[0] for s in seen)

    try:
        await wait_until(same, "the clients converge")
    except AssertionError:
        raise AssertionError(f"the clients did not converge: {seen}") from None
    return seen[0]


async def take_turns(
    turns: Sequence[tuple[JSClient, Sequence[list[Any]]]], everyone: Sequence[JSClient]
) -> list[dict[str, Any]]:
    """Each turn, one client applies its ops in one transaction (one update), waits until the
    server acknowledged it, then until every client shows it: one `doc.updated` per turn, in
    turn order. Return the document (as the clients show it, normalized) after each turn."""
    seen = []
    for client, ops in turns:
        await client.edit(*ops)
        await client.wait_settled()
        seen.append(await converged(list(everyone), []))
    return seen


async def edit_every_root(js: Sequence[JSClient], python: YClient) -> dict[str, Any]:
    """Three JS clients and a Python client edit Map, Array and Text at once, with conflicting
    writes (two set `bpm`, three insert at the start of the lyrics); wait until every edit is
    durable and every client shows the same document, and return it. The JS clients' tracks are
    t-alice, t-bob and t-carol, in order; the Python client's, t-dave."""
    first, second, third = js
    track = {"name": "Drums", "kind": "audio", "color": "#f00", "volume_db": -6, "pan": 0}
    await asyncio.gather(
        first.edit(
            ["meta.set", "title", "Night Drive"],
            ["meta.set", "bpm", 120],
            ["tracks.push", {**track, "id": "t-alice"}],
            ["lyrics.insert", 0, "verse one\n"],
        ),
        second.edit(
            ["meta.set", "bpm", 128],
            ["tracks.push", {**track, "id": "t-bob", "name": "Bass", "muted": False}],
            ["lyrics.insert", 0, "chorus\n"],
        ),
        third.edit(
            ["meta.set", "key", "A minor"],
            ["tracks.insert", 0, {**track, "id": "t-carol", "kind": "midi", "pan": -0.25}],
            ["lyrics.append", "bridge\n"],
        ),
    )
    with python.doc.transaction():
        python.doc.get("meta", type=Map)["time_signature"] = "4/4"
        python.doc.get("tracks", type=Array).append(
            Map(
                {
                    "id": "t-dave",
                    "name": "Keys",
                    "kind": "bus",
                    "volume_db": -3.5,
                    "pan": 1,
                    "clips": Array(),
                }
            )
        )
        python.doc.get("lyrics", type=Text).insert(0, "intro\n")
    await asyncio.gather(*(c.wait_settled() for c in js), python_settled(python))
    document = await converged(list(js), [python])
    assert sorted(t["id"] for t in document["tracks"]) == ["t-alice", "t-bob", "t-carol", "t-dave"]
    assert document["meta"]["bpm"] in (120.0, 128.0)
    return document


async def owner_and_member(
    server: ServerProcess,
    start: Callable[[str], Awaitable[JSClient]],
    member: str,
    role: str,
    dialect: str = "y-websocket",
) -> tuple[User, User, str, JSClient, JSClient]:
    """alice and `member`, a project of alice's with `member` as `role`, and a synced JavaScript
    client each (alice's with y-websocket, the member's with `dialect`): (alice, member,
    project, alice's client, the member's client)."""
    alice, other = await asyncio.gather(server.user("alice"), server.user(member))
    project = await server.project(alice, (other, role))
    owner, client = await asyncio.gather(start("alice"), start(member))
    await owner.connect(server.ws_url, project, alice.token)
    await client.connect(server.ws_url, project, other.token, dialect=dialect)
    await asyncio.gather(owner.wait_synced(), client.wait_synced())
    return alice, other, project, owner, client


def retitled(title: str, lyrics: str) -> bytes:
    """An update of its own Yjs client that sets the title and types `lyrics`."""
    doc: Doc[Any] = Doc()
    doc.get("meta", type=Map)["title"] = title
    doc.get("lyrics", type=Text).insert(0, lyrics)
    return doc.get_update()


async def post_update(node: ServerProcess, project: str, user: User, update: bytes) -> int:
    """Apply `update` through `POST /api/projects/{id}/updates` as `user`; the version it took."""
    headers = {
        "Authorization": f"Bearer {user.token}",
        "Content-Type": "application/octet-stream",
    }
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        response = await http.post(
            f"/api/projects/{project}/updates", content=update, headers=headers
        )
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version
