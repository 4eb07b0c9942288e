"""The receive path both dialects share: a decoded sync or awareness message of one peer, handed
to its room. Each dialect decodes its own framing (jacameno.collab.protocol for y-websocket,
jacameno.collab.hocuspocus) into the same messages, and tells its clients about refusals in its
own terms (ReadOnly, revocations)."""

from __future__ import annotations

from jacameno.collab import protocol
from jacameno.collab.peer import Peer
from jacameno.collab.room import Room
from jacameno.collab.writer import checked

Received = (
    protocol.SyncStep1
    | protocol.SyncStep2
    | protocol.SyncUpdate
    | protocol.Awareness
    | protocol.QueryAwareness
)


async def receive(room: Room, peer: Peer, message: Received, offload_bytes: int) -> None:
    """Hand `message` to `room`. The room's errors pass through: ReadOnly (a viewer's update),
    MalformedMessage, MessageTooLarge, TooManyRequests, RoomUnavailable, AdmissionError (the
    peer was revoked)."""
    if isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
        summary = await checked(message.update, offload_bytes)
        await room.receive_update(peer, message.update, summary)
    elif isinstance(message, protocol.SyncStep1):
        room.answer_sync_step1(peer, message.state_vector)
    elif isinstance(message, protocol.Awareness):
        room.receive_awareness(peer, message.payload)
    else:
        room.send_awareness_states(peer)
