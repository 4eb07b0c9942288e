"""Revising the access of a room's peers in place: a membership change's new role, or the end
of a peer's access (a removal, a deleted user, an expired token)."""

from __future__ import annotations

import logging

from jacameno.collab.errors import AdmissionError
from jacameno.collab.gatekeeper import Access
from jacameno.collab.membership import MembershipChange
from jacameno.collab.peer import Kind, Outgoing, Peer
from jacameno.collab.room import Room

logger = logging.getLogger("jacameno.collab.rooms")  # the rooms' log lines keep their logger


def revise(room: Room, change: MembershipChange) -> None:
    """Revise the access of the peers `change` concerns: a new role takes effect on their
    next message (Hocuspocus peers are told their new scope); a revoked peer is told so by
    its dialect and leaves the room."""
    for peer in list(room.peers.values()):
        outcome = change.revise(peer.access)
        if outcome is None:
            continue
        fields = {
            "project": room.project_id,
            "connection": peer.id,
            "user": peer.access.user_id,
        }
        if isinstance(outcome, Access):
            peer.access = outcome
            peer.deliver(Outgoing(Kind.ROLE, outcome.role.encode()))
            logger.info(
                "role changed",
                extra={"action": "collab.role_changed", "role": outcome.role, **fields},
            )
        else:
            revoke(room, peer, outcome)


def revoke(room: Room, peer: Peer, error: AdmissionError) -> None:
    """End `peer`'s access: its dialect tells it so, and it leaves the room."""
    peer.revoked = error
    peer.dialect.revoke(peer.connection, error)
    room.leave(peer)
    logger.info(
        "access revoked",
        extra={
            "action": "collab.revoked",
            "code": error.close_code,
            "project": room.project_id,
            "connection": peer.id,
            "user": peer.access.user_id,
            "reason": str(error),
        },
    )
