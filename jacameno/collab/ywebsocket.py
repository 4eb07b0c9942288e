"""The y-websocket dialect and its endpoint, `/collab/{project_id}`.

Admission at the upgrade: the access token comes as the `token` query parameter (what the
y-websocket provider's `params` option sends) or in `Sec-WebSocket-Protocol` (`bearer.<JWT>`,
next to `jacameno`, which the server then selects). The server never selects a `bearer.`
protocol: the response would echo the token. A client that offers only a bearer gets no
subprotocol (browsers then fail the connection: offer `jacameno` too). A refused socket is
accepted and closed at once with 4401, 4403, 4404 or 4429 (browsers cannot read an HTTP status
from a failed upgrade).

Then one protocol message per binary frame (jacameno.collab.protocol). A viewer's non-empty update
is refused: it is not applied nor logged, and the socket receives y-protocols' permission-denied
auth message; the socket stays open (closing would only make the provider reconnect and resend).
A socket whose access is revoked while open is closed with 4403 (removed) or 4404 (deleted)."""

from __future__ import annotations

import logging

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from jacameno.collab import protocol, wire
from jacameno.collab.connection import Connection, receive_frame, session_guard
from jacameno.collab.errors import (
    AdmissionError,
    MalformedMessage,
    MessageTooLarge,
    RoomUnavailable,
    close_code,
)
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.receive import receive
from jacameno.collab.room import ReadOnly, Room
from jacameno.collab.rooms import Rooms
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)

SUBPROTOCOL = "jacameno"
BEARER_PREFIX = "bearer."


class YWebsocketDialect:
    key = "y-websocket"
    echoes = True
    early_sync = True  # y-websocket's provider is synced by any sync step 2

    def acknowledgement(self, applied: bool) -> bytes | None:
        return None  # the echo is the acknowledgement

    def revoke(self, connection: Connection, error: AdmissionError) -> None:
        connection.close(error.close_code, str(error))  # the socket serves one room only

    def encode(self, kind: Kind, payload: bytes) -> bytes | None:
        if kind is Kind.UPDATE:
            return protocol.encode_update(payload)
        if kind is Kind.AWARENESS:
            return protocol.encode_awareness(payload)
        if kind is Kind.SYNC_STEP1:
            return protocol.encode_sync_step1(payload)
        if kind is Kind.SYNC_STEP2:
            return protocol.encode_sync_step2(payload)
        if kind is Kind.PERMISSION_DENIED:
            return protocol.encode_permission_denied(payload.decode())
        return None


DIALECT = YWebsocketDialect()


def credentials(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to select) from the query string or Sec-WebSocket-Protocol."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    offered = [p for p in offered if p]
    token = websocket.query_params.get("token")
    bearer = next((p for p in offered if p.startswith(BEARER_PREFIX)), None)
    if token is None and bearer is not None:
        token = bearer.removeprefix(BEARER_PREFIX)
    if SUBPROTOCOL in offered:
        return token, SUBPROTOCOL
    # A browser fails the connection if it offered subprotocols and none is selected; a
    # bearer is a secret, never echoed.
    others = [p for p in offered if not p.startswith(BEARER_PREFIX)]
    return token, (others[0] if others else None)


async def collab(websocket: WebSocket, registry: Rooms) -> None:
    since = wire.arrived(wire.frame_writer(websocket))  # the upgrade request's arrival
    project_id = str(websocket.path_params["project_id"])
    token, subprotocol = credentials(websocket)
    try:
        access = await registry.admit(project_id, token)
    except (AdmissionError, RoomUnavailable) as exc:
        await _refuse(websocket, subprotocol, exc.close_code, str(exc))
        return
    await websocket.accept(subprotocol=subprotocol)
    config = registry.config
    connection = Connection.open(websocket, config)
    async with (
        session_guard(connection, project=project_id),
        registry.session(project_id, connection, access, DIALECT, since) as (room, peer),
    ):
        await _serve(websocket, room, peer, config)


async def _refuse(websocket: WebSocket, subprotocol: str | None, code: int, reason: str) -> None:
    await websocket.accept(subprotocol=subprotocol)
    await websocket.close(code, reason[:120])


async def _serve(websocket: WebSocket, room: Room, peer: Peer, config: CollabConfig) -> None:
    """Read frames until the client leaves or the connection is closed."""
    connection = peer.connection
    while not connection.closing:
        frame = await receive_frame(websocket, connection, config)
        if frame is None:
            return
        try:
            await _handle(room, peer, frame, config.offload_bytes)
        except ReadOnly as exc:
            peer.deliver(Outgoing(Kind.PERMISSION_DENIED, str(exc).encode()))
        except (MalformedMessage, MessageTooLarge) as exc:
            logger.info(
                "message refused",
                extra={
                    "action": "collab.refused",
                    "project": room.project_id,
                    "connection": connection.id,
                    "error": str(exc),
                },
            )
            connection.close(close_code(exc), str(exc))
            return


async def _handle(room: Room, peer: Peer, frame: bytes, offload_bytes: int) -> None:
    message = protocol.decode(frame)
    if not isinstance(message, protocol.Auth):
        await receive(room, peer, message, offload_bytes)
    # Auth messages only flow from server to client; a well-formed one is ignored.


def routes(rooms: Rooms) -> list[WebSocketRoute]:
    """`/collab/{project_id}` over `rooms`."""

    async def endpoint(websocket: WebSocket) -> None:
        await collab(websocket, rooms)

    return [WebSocketRoute("/collab/{project_id}", endpoint, name="collab")]
