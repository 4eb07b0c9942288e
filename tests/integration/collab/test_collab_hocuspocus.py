"""The Hocuspocus dialect at /hocuspocus: in-band auth, documents multiplexed on one socket,
SyncStatus only after the commit, stateless messages relayed and never logged."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crdt.encoding import Reader, write_var_bytes, write_var_string, write_var_uint
from domain import document as project_document
from domain import events
from harness.accounts import User
from harness.waiting import eventually
from jacameno.collab import hocuspocus, protocol
from tests.integration.collab.support import Gate, Server


@dataclass
class Document:
    doc: Doc[Any] = field(default_factory=Doc)
    scope: str | None = None
    denied: str | None = None
    synced: bool = False
    statuses: list[int] = field(default_factory=list)
    stateless: list[str] = field(default_factory=list)
    updates: int = 0
    token_requests: int = 0


class HocuspocusClient:
    """Speaks the frames @hocuspocus/provider 4 speaks (checked against it by hand)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.documents: dict[str, Document] = {}
        self._sends: list[asyncio.Future[None]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, server: Server) -> HocuspocusClient:
        ws = await connect(f"{server.ws_url}/hocuspocus", compression=None, max_size=None)
        return cls(ws)

    async def send(self, name: str, kind: int, body: bytes = b"") -> None:
        await self.ws.send(write_var_string(name) + write_var_uint(kind) + body)

    async def attach(self, name: str, token: str) -> Document:
        document = self.documents[name] = Document()
        body = write_var_uint(hocuspocus.AUTH_TOKEN) + write_var_string(token)
        await self.send(name, hocuspocus.AUTH, body + write_var_string("4.8.0"))
        step1 = bytes((protocol.SYNC_STEP1,)) + write_var_bytes(document.doc.get_state())
        await self.send(name, hocuspocus.SYNC, step1)
        return document

    async def update(self, name: str, update: bytes) -> None:
        body = bytes((protocol.SYNC_UPDATE,)) + write_var_bytes(update)
        await self.send(name, hocuspocus.SYNC, body)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self._handle(frame)
        except ConnectionClosed:
            pass

    def _handle(self, frame: bytes) -> None:
        reader = Reader(frame, "test")
        document = self.documents[reader.var_string()]
        kind = reader.var_uint()
        if kind == hocuspocus.AUTH:
            auth = reader.var_uint()
            if auth == hocuspocus.AUTH_TOKEN:
                document.token_requests += 1
            elif auth == hocuspocus.AUTH_AUTHENTICATED:
                document.scope = reader.var_string()
            else:
                document.denied = reader.var_string()
        elif kind == hocuspocus.SYNC:
            step = reader.var_uint()
            payload = reader.var_bytes()
            if step == protocol.SYNC_STEP1:
                answer = bytes((protocol.SYNC_STEP2,))
                answer += write_var_bytes(document.doc.get_update(payload))
                name = next(n for n, d in self.documents.items() if d is document)
                self._sends.append(asyncio.ensure_future(self.send(name, hocuspocus.SYNC, answer)))
            else:
                document.doc.apply_update(payload)
                document.synced |= step == protocol.SYNC_STEP2
                document.updates += step == protocol.SYNC_UPDATE
        elif kind == hocuspocus.SYNC_STATUS:
            document.statuses.append(reader.uint8())
        elif kind == hocuspocus.STATELESS:
            document.stateless.append(reader.var_string())

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def _viewer(server: Server) -> tuple[User, User, str, HocuspocusClient, Document]:
    """A project of alice's with vera as a viewer, attached over Hocuspocus and synced:
    (alice, vera, project, vera's client, her document)."""
    alice, vera = await server.user("alice"), await server.user("vera")
    project = await server.project(alice, (vera, "viewer"))
    client = await HocuspocusClient.open(server)
    document = await client.attach(project, vera.token)
    await eventually(lambda: document.synced)
    assert document.scope == "readonly"
    return alice, vera, project, client, document


def _edit(document: Document, text: str) -> bytes:
    before = document.doc.get_state()
    document.doc.get("lyrics", type=Text).insert(0, text)
    return document.doc.get_update(before)


async def test_sync_status_comes_only_after_the_commit(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await HocuspocusClient.open(server)
    document = await client.attach(project, alice.token)
    await eventually(lambda: document.synced)
    assert document.scope == "read-write"
    other = await HocuspocusClient.open(server)
    watcher = await other.attach(project, alice.token)
    await eventually(lambda: watcher.synced)
    live = server.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: not live.busy)
    gate = Gate(server.store)
    live.writer.store = gate
    acknowledged = list(document.statuses)  # the empty sync step 2 was acknowledged
    try:
        await client.update(project, _edit(document, "durable"))
        await eventually(lambda: gate.calls == 1)
        # Stateless messages are relayed at once; they prove the server read past the update.
        await client.send(project, hocuspocus.STATELESS, write_var_string("hi"))
        await eventually(lambda: watcher.stateless == ["hi"])
        assert document.statuses == acknowledged
        assert await server.events(project, events.DOC_UPDATED) == []
    finally:
        gate.opened.set()
    await eventually(lambda: document.statuses == [*acknowledged, 1] and watcher.updates == 1)
    assert document.updates == 0  # no echo in this dialect: SyncStatus is the acknowledgement
    assert project_document.read(watcher.doc)["lyrics"] == "durable"
    assert len(await server.events(project, events.DOC_UPDATED)) == 1
    assert all("stateless" not in e.type for e in await server.events(project))
    await client.close()
    await other.close()


async def test_a_documents_sync_is_timed_from_its_authentication(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    joins, joined = await server.histogram("join")
    client = await HocuspocusClient.open(server)
    started = time.perf_counter()
    document = await client.attach(project, alice.token)
    await eventually(lambda: document.synced)
    seen = time.perf_counter() - started
    count, total = await server.histogram("join")
    assert count == joins + 1
    assert 0 < total - joined <= seen
    await client.close()


async def test_both_dialects_share_a_room(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    hp = await HocuspocusClient.open(server)
    document = await hp.attach(project, alice.token)
    ys = await server.client(project, alice)
    await ys.sync()
    await eventually(lambda: document.synced)
    await hp.update(project, _edit(document, "from hocuspocus "))
    ys.doc.get("lyrics", type=Text).insert(0, "from y-websocket ")
    await eventually(
        lambda: project_document.read(document.doc) == ys.content() and document.updates == 1
    )
    assert "hocuspocus" in ys.content()["lyrics"]
    await hp.close()
    await ys.close()


async def test_a_viewer_gets_sync_status_0_and_nothing_is_logged(server: Server) -> None:
    _alice, _vera, project, client, document = await _viewer(server)
    await client.update(project, _edit(document, "nope"))
    await eventually(lambda: 0 in document.statuses)
    assert await server.events(project, events.DOC_UPDATED) == []
    await client.close()


async def test_a_refused_document_leaves_the_socket_to_its_other_documents(
    server: Server,
) -> None:
    alice, mallory = await server.user("alice"), await server.user("mallory")
    project = await server.project(alice)
    other_project = await server.project(mallory)
    client = await HocuspocusClient.open(server)
    refused = await client.attach(other_project, alice.token)
    forged = await client.attach("not-a-project", "not-a-token")
    accepted = await client.attach(project, alice.token)
    await eventually(lambda: accepted.synced and refused.denied is not None)
    assert refused.denied == "not a member of this project"
    assert forged.denied == "the access token is invalid or expired"
    assert not refused.synced
    await client.update(project, _edit(accepted, "still open"))
    await eventually(lambda: accepted.statuses[-1:] == [1] and len(accepted.statuses) == 2)
    # Closing a document detaches it, and only it.
    await client.send(project, hocuspocus.CLOSE)
    await eventually(lambda: project not in server.rooms)
    left = await server.events(project, events.SESSION_LEFT)
    assert len(left) == 1
    await client.close()


async def test_a_malformed_frame_closes_the_socket_4400(server: Server) -> None:
    client = await HocuspocusClient.open(server)
    await client.ws.send(write_var_string("x") + write_var_uint(42))
    await client._reader
    assert client.ws.close_code == 4400


async def test_a_revoked_document_is_denied_and_the_socket_keeps_the_others(
    server: Server,
) -> None:
    alice, bob = await server.user("alice"), await server.user("bob")
    shared = await server.project(alice, (bob, "editor"))
    own = await server.project(bob)
    client = await HocuspocusClient.open(server)
    revoked = await client.attach(shared, bob.token)
    kept = await client.attach(own, bob.token)
    await eventually(lambda: revoked.synced and kept.synced)
    await server.remove_member(alice, shared, bob)
    await eventually(lambda: revoked.denied is not None)
    assert revoked.denied == "no longer a member of this project"
    # What the client still sends for the revoked document is ignored; the other one is served.
    statuses = list(revoked.statuses)
    await client.update(shared, _edit(revoked, "ignored"))
    await client.update(own, _edit(kept, "served"))
    await eventually(lambda: kept.statuses[-1:] == [1] and len(kept.statuses) == 2)
    assert revoked.statuses == statuses
    assert await server.events(shared, events.DOC_UPDATED) == []
    assert len(await server.events(own, events.DOC_UPDATED)) == 1
    left = await server.events(shared, events.SESSION_LEFT)
    assert [(e.metadata["user_id"], json.loads(e.data)["code"]) for e in left] == [(bob.id, 4403)]
    # Authenticating the document again is answered like any refused admission.
    revoked.denied = None
    await client.attach(shared, bob.token)
    await eventually(lambda: client.documents[shared].denied == "not a member of this project")
    await client.close()


async def test_a_role_change_is_told_as_the_new_scope(server: Server) -> None:
    alice, vera, project, client, document = await _viewer(server)
    await server.change_role(alice, project, vera, "editor")
    await eventually(lambda: document.scope == "read-write")
    await client.update(project, _edit(document, "as an editor"))
    await eventually(lambda: document.statuses[-1:] == [1] and len(document.statuses) == 2)
    await server.change_role(alice, project, vera, "viewer")
    await eventually(lambda: document.scope == "readonly")
    await client.update(project, _edit(document, "as a viewer"))
    await eventually(lambda: document.statuses[-1:] == [0])
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.metadata["user_id"] for e in logged] == [vera.id]
    await client.close()
