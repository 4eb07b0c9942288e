"""A real server for collaboration tests (uvicorn on a free port, in the test's event loop), users
and projects made through the REST API, and a Yjs client: `websockets` plus a pycrdt Doc."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any

import httpx
import uvicorn
from pycrdt import Doc, Text, TransactionEvent
from redis.asyncio import Redis
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import jacameno.server
from domain import document, events
from domain.document import ProjectDocument
from eventstore import EventStore, RecordedEvent
from harness import accounts
from harness.accounts import User
from harness.waiting import TIMEOUT, eventually
from jacameno.app import create_app
from jacameno.collab import awareness, protocol
from jacameno.collab.rooms import Rooms
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig


async def kill_clients(redis_url: str, name: str) -> int:
    """Kill the Redis connections named `name` (CLIENT KILL, from an admin connection)."""
    admin = Redis.from_url(redis_url)
    try:
        killed = 0
        for client in await admin.client_list():
            if client["name"] == name:
                killed += await admin.client_kill_filter(_id=client["id"])
        return killed
    finally:
        await admin.aclose()


@dataclass
class Server:
    app: Starlette
    url: str
    http: httpx.AsyncClient
    uvicorn: uvicorn.Server

    def limit_send_buffer(self, size: int) -> None:
        """Sockets accepted from now on inherit a small fixed send buffer from the listener."""
        for sock in self.uvicorn.servers[0].sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    @property
    def rooms(self) -> Rooms:
        rooms: Rooms = self.app.state.services.live.rooms
        return rooms

    @property
    def store(self) -> EventStore:
        store: EventStore = self.app.state.services.core.store
        return store

    async def user(self, name: str = "user") -> User:
        return await accounts.new_user(self.http, name)

    async def project(self, owner: User, *members: tuple[User, str]) -> str:
        return await accounts.new_project(self.http, owner, *members)

    async def change_role(self, owner: User, project_id: str, member: User, role: str) -> None:
        await self.command(owner, "PATCH", f"{project_id}/members/{member.id}", {"role": role})

    async def remove_member(self, owner: User, project_id: str, member: User) -> None:
        await self.command(owner, "DELETE", f"{project_id}/members/{member.id}")

    async def delete_project(self, owner: User, project_id: str) -> None:
        await self.command(owner, "DELETE", project_id)

    async def command(
        self, actor: User, method: str, path: str, body: dict[str, str] | None = None
    ) -> None:
        """`method` on /api/projects/`path` as `actor`, which must succeed (200 or 204)."""
        response = await self.http.request(
            method, f"/api/projects/{path}", json=body, headers=actor.headers
        )
        accounts.expect(response, 200, 204)

    async def histogram(self, name: str) -> tuple[float, float]:
        """(count, sum) of the histogram `jacameno_collab_{name}_seconds` at /metrics."""
        text = (await self.http.get("/metrics")).text
        found = []
        for part in ("count", "sum"):
            pattern = rf"^jacameno_collab_{name}_seconds_{part} (\S+)$"
            match = re.search(pattern, text, re.MULTILINE)
            assert match is not None, text
            found.append(float(match.group(1)))
        return found[0], found[1]

    async def events(self, project_id: str, kind: str | None = None) -> list[RecordedEvent]:
        found = await self.store.read_stream(events.stream_name(project_id))
        return [e for e in found if kind is None or e.type == kind]

    async def client(self, project_id: str, user: User, **kwargs: Any) -> YClient:
        client = YClient(self, project_id, user.token, **kwargs)
        await client.connect()
        return client

    async def assert_unharmed(self, project_id: str, bystander: YClient) -> None:
        """`bystander` still edits after someone else was refused, and the project's log holds
        exactly the bystander's edits (nothing of the refused one); then it leaves."""
        bystander.doc.get("lyrics", type=Text).insert(0, "still here")
        await eventually(lambda: len(bystander.echoes) == 1)
        logged = await self.events(project_id, events.DOC_UPDATED)
        assert [e.data for e in logged] == bystander.sent
        assert bystander.close_code is None
        await bystander.close()

    async def two_synced(self, user: str = "alice") -> tuple[str, YClient, YClient]:
        """A new user's project and two synced clients of that user in it."""
        owner = await self.user(user)
        project = await self.project(owner)
        first = await self.client(project, owner)
        second = await self.client(project, owner)
        await first.sync()
        await second.sync()
        return project, first, second

    async def owner_and_member(
        self, role: str, owner: str = "alice", member: str = "bob"
    ) -> tuple[User, User, str, YClient, YClient]:
        """Two users, a project of the first with the second as `role`, and a synced client
        each: (owner, member, project, owner's client, member's client)."""
        owner_user, member_user = await self.user(owner), await self.user(member)
        project = await self.project(owner_user, (member_user, role))
        owner_client = await self.client(project, owner_user)
        member_client = await self.client(project, member_user)
        await owner_client.sync()
        await member_client.sync()
        return owner_user, member_user, project, owner_client, member_client


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, config: CollabConfig | None = None, *, asgi_sends: bool = False
) -> AsyncIterator[Server]:
    """The app under uvicorn with our WebSocket protocol, or (`asgi_sends`) with uvicorn's own,
    so that frames go through plain ASGI sends as under any other server."""
    app = create_app(settings if config is None else replace(settings, collab=config))
    ws = "websockets-sansio" if asgi_sends else jacameno.server.FramesWebSocketProtocol
    server = uvicorn.Server(
        jacameno.server.config(app, "127.0.0.1", 0, settings=settings, ws=ws, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done())
    if task.done():
        task.result()
        raise AssertionError("the server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
            yield Server(app, url, http, server)
    finally:
        server.should_exit = True
        await task


@dataclass(eq=False)
class YClient:
    """A y-websocket client: answers sync step 1, applies what the server sends to its own Doc,
    sends its local changes as updates, and records every message it gets."""

    server: Server
    project_id: str
    token: str | None
    _: KW_ONLY
    subprotocols: Sequence[str] | None = None
    use_query: bool = True
    max_queue: int | None = 16
    read: bool = True
    receive_buffer: int | None = None
    doc: Doc[Any] = field(init=False, default_factory=Doc)
    messages: list[protocol.Message] = field(init=False, default_factory=list)
    echoes: list[bytes] = field(init=False, default_factory=list)
    echoed_at: list[float] = field(init=False, default_factory=list)  # loop.time() of each
    awareness: dict[int, str] = field(init=False, default_factory=dict)
    synced: bool = field(init=False, default=False)
    close_code: int | None = field(init=False, default=None)
    close_reason: str = field(init=False, default="")
    ws: ClientConnection | None = field(init=False, default=None)
    sent: list[bytes] = field(init=False, default_factory=list)
    _remote: bool = field(init=False, default=False)
    _reader: asyncio.Task[None] | None = field(init=False, default=None)
    _sends: list[asyncio.Future[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.doc.observe(self._local_change)

    @property
    def url(self) -> str:
        base = f"{self.server.ws_url}/collab/{self.project_id}"
        return f"{base}?token={self.token}" if self.use_query and self.token else base

    async def connect(self) -> None:
        extra: dict[str, Any] = {}
        if self.receive_buffer is not None:
            # A small fixed receive buffer (no autotuning): a client that stops reading then
            # pushes back on the server after kilobytes instead of megabytes.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            host, port = self.server.url.removeprefix("http://").split(":")
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            extra["sock"] = sock
        self.ws = await connect(
            self.url,
            **extra,
            subprotocols=self.subprotocols,  # type: ignore[arg-type]
            max_queue=self.max_queue,
            max_size=None,
            open_timeout=TIMEOUT,
            compression=None,
        )
        if self.read:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self.handle(frame)
        except ConnectionClosed:
            pass
        self._closed()

    def _closed(self) -> None:
        assert self.ws is not None
        self.close_code = self.ws.close_code or 1006
        self.close_reason = self.ws.close_reason or ""

    def handle(self, frame: bytes) -> None:
        message = protocol.decode(frame)
        self.messages.append(message)
        if isinstance(message, protocol.SyncStep1):
            self.send_now(protocol.encode_sync_step2(self.doc.get_update(message.state_vector)))
        elif isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
            if isinstance(message, protocol.SyncStep2):
                self.synced = True
            else:
                self.echoes.append(message.update)
                self.echoed_at.append(asyncio.get_running_loop().time())
            self._remote = True
            try:
                with self.doc.transaction(origin="remote"):
                    self.doc.apply_update(message.update)
            finally:
                self._remote = False
        elif isinstance(message, protocol.Awareness):
            for entry in awareness.decode(message.payload):
                if entry.state == "null":
                    self.awareness.pop(entry.client, None)
                else:
                    self.awareness[entry.client] = entry.state

    def _local_change(self, event: TransactionEvent) -> None:
        if not self._remote and self.ws is not None:
            self.sent.append(event.update)
            self.send_now(protocol.encode_update(event.update))

    def send_now(self, frame: bytes) -> None:
        assert self.ws is not None
        task = asyncio.ensure_future(self.ws.send(frame))
        task.add_done_callback(lambda t: t.exception())
        self._sends.append(task)

    async def flush(self) -> None:
        """Wait until every frame sent from a callback has been written."""
        while self._sends:
            await asyncio.wait([self._sends.pop()])

    async def send(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send(frame)

    async def sync(self) -> None:
        """Ask for the server's state and wait until it arrived."""
        await self.send(protocol.encode_sync_step1(self.doc.get_state()))
        await eventually(lambda: self.synced or self.close_code is not None)

    async def wait_closed(self, timeout: float = TIMEOUT) -> int:
        await eventually(lambda: self.close_code is not None, timeout)
        assert self.close_code is not None
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    def content(self) -> ProjectDocument:
        return document.read(self.doc)


@dataclass
class Gate:
    """Wraps a store: appends wait until `open` is set; `calls` counts appends started.
    `fail_with` fails an append before it reaches the store, `fail_after` once it committed;
    `delay` seconds slow each append down once let through (a slow disk)."""

    store: EventStore
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    fail_with: BaseException | None = None
    fail_after: BaseException | None = None
    delay: float = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        await self.opened.wait()
        if self.fail_with is not None:
            raise self.fail_with
        if self.delay:
            await asyncio.sleep(self.delay)
        result = await self.store.append(*args, **kwargs)
        if self.fail_after is not None:
            raise self.fail_after
        return result
