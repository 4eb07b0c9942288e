"""The Hocuspocus provider dialect and its endpoint, `/hocuspocus` (@hocuspocus/provider 4).

Every frame names its document: `varstring(document name) varuint(type) payload`, so one socket
may carry several documents. The document name is the project id (a `\\0session` suffix, which
the provider adds with `sessionAwareness`, is kept for routing and ignored otherwise; logs and
events only ever see a safe form of it, `jacameno.collab.sessions.safe_label`).

    0 sync          as y-websocket (step 1, step 2, update)
    1 awareness     varbytes
    2 auth          client: varuint(0 token) varstring(token) [varstring(provider version)]
                    server: varuint(0 token request: send a fresh token)
                            | varuint(1 permission denied) varstring(reason)
                            | varuint(2 authenticated) varstring("read-write" | "readonly")
    3 query awareness
    4 sync reply    as sync (Hocuspocus's name for a sync message that asks for no step 1 back;
                    we never answer a step 1 with one, so it is handled as sync)
    5 stateless     varstring(payload): relayed to the document's other sockets, never logged
    7 close         client: detach this document; server: varstring(reason)
    8 sync status   server: varint(1 applied | 0 refused), sent once the update is durable
    9 / 10          ping / pong, single bytes without a document name

Admission is in-band: a document's first message is its auth message; the token is checked by
the same gatekeeper as `/collab` and answered with *authenticated* (the socket then joins the
room) or *permission denied* (the socket stays open for its other documents). A token sent
again for a document already in its room renews the access when it is the same user's: the
socket is revoked (permission denied) when its latest token expires, and is asked for a fresh
one (a token request) `token_renewal_ahead` seconds before. Messages for a document that is not
authenticated are ignored, and nothing is kept for it: a socket holds state only for its
authenticated documents (at most `max_documents_per_socket`; a longer name than
`max_document_name_bytes` closes the socket with 4400). Until a socket has an authenticated
document it waits in the node's lobby (jacameno.collab.lobby): bounded in number, and closed
with 4401 after `auth_timeout`. The sender of an update gets SyncStatus instead
of an echo; a viewer's update gets SyncStatus 0 and is neither applied nor logged.

Membership changes while a document is open (jacameno.collab.membership) are told in the same
terms, for that document only: a revoked access gets *permission denied* (the provider emits
`authenticationFailed`; the document is no longer authenticated, so what else the client sends
for it is ignored until it authenticates again, and the socket stays open for its other
documents), and a changed role gets *authenticated* with the new scope (the provider updates
`authorizedScope`). We do not send Hocuspocus's close message (7) instead: the provider reports
it as a close with code 1000, which says nothing of why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from crdt.encoding import Reader, write_var_bytes, write_var_string, write_var_uint
from domain.roles import can_write
from jacameno.collab import protocol
from jacameno.collab.connection import Connection, receive_frame, session_guard
from jacameno.collab.errors import (
    TRY_AGAIN_LATER,
    AdmissionError,
    MalformedMessage,
    MessageTooLarge,
    RoomUnavailable,
    close_code,
)
from jacameno.collab.lobby import Admission, Lobby
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.receive import Received, receive
from jacameno.collab.room import ReadOnly, Room
from jacameno.collab.rooms import Rooms
from jacameno.collab.sessions import safe_label
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3
SYNC_REPLY = 4
STATELESS = 5
CLOSE = 7
SYNC_STATUS = 8
PING = b"\x09"
PONG = b"\x0a"

AUTH_TOKEN = 0
AUTH_PERMISSION_DENIED = 1
AUTH_AUTHENTICATED = 2

ROUTING_SEPARATOR = "\0"
TOO_MANY_DOCUMENTS = "too many documents on this socket"


class HocuspocusDialect:
    """Frames for one document name (one object per name: frames are encoded once per name)."""

    echoes = False
    early_sync = False  # the provider's sync step 1 comes with its authentication: no wait

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = f"hocuspocus:{name}"
        self._prefix = write_var_string(name)

    def acknowledgement(self, applied: bool) -> bytes | None:
        return self._prefix + bytes((SYNC_STATUS, 1 if applied else 0))

    def revoke(self, connection: Connection, error: AdmissionError) -> None:
        connection.send(self.auth(AUTH_PERMISSION_DENIED, str(error)))

    def encode(self, kind: Kind, payload: bytes) -> bytes | None:
        if kind is Kind.UPDATE:
            return self._prefix + bytes((SYNC, protocol.SYNC_UPDATE)) + write_var_bytes(payload)
        if kind is Kind.AWARENESS:
            return self._prefix + bytes((AWARENESS,)) + write_var_bytes(payload)
        if kind is Kind.SYNC_STEP1:
            return self._prefix + bytes((SYNC, protocol.SYNC_STEP1)) + write_var_bytes(payload)
        if kind is Kind.SYNC_STEP2:
            return self._prefix + bytes((SYNC, protocol.SYNC_STEP2)) + write_var_bytes(payload)
        if kind is Kind.STATELESS:
            return self._prefix + bytes((STATELESS,)) + write_var_bytes(payload)
        if kind is Kind.ROLE:
            return self.auth(AUTH_AUTHENTICATED, scope(payload.decode()))
        if kind is Kind.TOKEN_REQUEST:
            return self._prefix + bytes((AUTH,)) + write_var_uint(AUTH_TOKEN)
        return self.auth(AUTH_PERMISSION_DENIED, payload.decode())  # Kind.PERMISSION_DENIED

    def auth(self, kind: int, text: str) -> bytes:
        return self._prefix + bytes((AUTH,)) + write_var_uint(kind) + write_var_string(text)


def scope(role: str) -> str:
    return "read-write" if can_write(role) else "readonly"


@dataclass(slots=True)
class _Document:
    dialect: HocuspocusDialect
    room: Room | None = None
    peer: Peer | None = None


async def hocuspocus(websocket: WebSocket, registry: Rooms, lobby: Lobby) -> None:
    await websocket.accept()
    connection = Connection.open(websocket, registry.config)
    admission = Admission(lobby, connection, registry.config.auth_timeout)
    if not admission.open():
        logger.warning(
            "unauthenticated socket refused",
            extra={"action": "collab.lobby_full", "connection": connection.id},
        )
        connection.close(TRY_AGAIN_LATER, "too many unauthenticated sockets")
    documents: dict[str, _Document] = {}
    async with session_guard(connection, dialect="hocuspocus"):
        try:
            await _serve(websocket, registry, connection, documents, admission)
        finally:
            admission.close()
            # As with y-websocket's room session: leave the rooms first, then close.
            for document in documents.values():
                if document.room is not None and document.peer is not None:
                    registry.detach(document.room, document.peer)


async def _serve(
    websocket: WebSocket,
    registry: Rooms,
    connection: Connection,
    documents: dict[str, _Document],
    admission: Admission,
) -> None:
    config = registry.config
    while not connection.closing:
        frame = await receive_frame(websocket, connection, config)
        if frame is None:
            return
        if frame == PONG:
            continue
        try:
            await _handle(registry, connection, documents, frame, config)
        except (MalformedMessage, MessageTooLarge) as exc:
            logger.info(
                "message refused",
                extra={"action": "collab.refused", "connection": connection.id, "error": str(exc)},
            )
            connection.close(close_code(exc), str(exc))
            return
        admission.update(authenticated=bool(documents))


async def _handle(
    registry: Rooms,
    connection: Connection,
    documents: dict[str, _Document],
    frame: bytes,
    config: CollabConfig,
) -> None:
    reader = Reader(frame, "hocuspocus message")
    name = reader.var_string()
    if len(name.encode()) > config.max_document_name_bytes:
        raise reader.fail("document name too long")
    kind = reader.var_uint()
    # Only authenticated documents have an entry: a name that is not (or no longer) admitted
    # costs nothing however many frames mention it.
    document = documents.get(name)
    if document is not None and document.peer is not None and document.peer.revoked is not None:
        del documents[name]  # revoked: it left the room and was told so
        document = None
    if kind == AUTH:
        if reader.var_uint() != AUTH_TOKEN:
            raise reader.fail("clients only send tokens")
        token = reader.var_string()
        if reader.remaining:
            reader.var_string()  # the provider's version
        reader.end()
        if document is None:
            document = _Document(HocuspocusDialect(name))
            if len(documents) >= config.max_documents_per_socket:
                connection.send(document.dialect.auth(AUTH_PERMISSION_DENIED, TOO_MANY_DOCUMENTS))
                return
        await _authenticate(registry, connection, document, token)
        if document.room is not None:
            documents[name] = document
        return
    room, peer = (None, None) if document is None else (document.room, document.peer)
    if kind in (SYNC, SYNC_REPLY, AWARENESS, QUERY_AWARENESS):
        message: Received
        if kind == AWARENESS:
            message = protocol.Awareness(reader.var_bytes())
        elif kind == QUERY_AWARENESS:
            message = protocol.QueryAwareness()
        else:
            message = protocol.decode_sync(reader)
        reader.end()
        if room is None or peer is None:
            return
        try:
            await receive(room, peer, message, config.offload_bytes)
        except ReadOnly:
            peer.acknowledge(applied=False)
        except AdmissionError:  # revoked while the update was being checked
            documents.pop(name, None)
    elif kind == STATELESS:
        text = reader.var_string()
        reader.end()
        if room is not None and peer is not None:
            room.relay_stateless(peer, text)
    elif kind == CLOSE:
        reader.end()
        documents.pop(name, None)
        if room is not None and peer is not None:
            registry.detach(room, peer)
    else:
        raise reader.fail(f"unknown message type {kind}")


async def _authenticate(
    registry: Rooms, connection: Connection, document: _Document, token: str
) -> None:
    dialect = document.dialect
    since = connection.received_at  # the authentication message's arrival
    project_id, separator, session = dialect.name.partition(ROUTING_SEPARATOR)
    try:
        access = await registry.admit(project_id, token)
    except (AdmissionError, RoomUnavailable) as exc:
        if document.room is None:
            connection.send(dialect.auth(AUTH_PERMISSION_DENIED, str(exc)))
        return  # (a bad token offered to renew an open document changes nothing)
    if document.room is not None and document.peer is not None:
        # Already in: a token of the same user renews the access (its expiry).
        peer = document.peer
        if access.user_id == peer.access.user_id:
            peer.access = replace(peer.access, expires_at=access.expires_at)
            registry.watch_expiry(document.room, peer)
            connection.send(dialect.auth(AUTH_AUTHENTICATED, scope(peer.access.role)))
        return
    connection.send(dialect.auth(AUTH_AUTHENTICATED, scope(access.role)))
    # The name is the client's choice: only a safe form of it reaches logs and events.
    peer_id = f"{connection.id}/{safe_label(project_id)}"
    if separator:
        peer_id += f"/{safe_label(session)}"
    try:
        room, peer = await registry.attach(
            project_id, connection, access, dialect, peer_id=peer_id, since=since
        )
    except AdmissionError as exc:  # the membership changed while the socket was being let in
        connection.send(dialect.auth(AUTH_PERMISSION_DENIED, str(exc)))
        return
    if peer.access.role != access.role:
        peer.deliver(Outgoing(Kind.ROLE, peer.access.role.encode()))
    document.room, document.peer = room, peer


def routes(rooms: Rooms, lobby: Lobby) -> list[WebSocketRoute]:
    """`/hocuspocus` over `rooms`, its unauthenticated sockets waiting in `lobby`."""

    async def endpoint(websocket: WebSocket) -> None:
        await hocuspocus(websocket, rooms, lobby)

    return [WebSocketRoute("/hocuspocus", endpoint, name="hocuspocus")]
