"""The exception tree of collaboration, and the WebSocket close code each one maps to.

CollabError
├── AdmissionError         the socket may not join (raised by a Gatekeeper)
│   ├── Unauthenticated    4401: missing, malformed, forged or expired token
│   ├── Forbidden          4403: not a member of the project (or no longer)
│   ├── NoSuchProject      4404: no such project (or it was deleted)
│   └── TooManySockets     4429: the user has `sockets_per_user` sockets in the project already
├── MessageTooLarge        1009: a frame or a document over its limit
├── TooManyRequests        4429: more large sync answers than a socket's budget allows
└── RoomUnavailable        1013: the log failed; the room is dropped and reloads from the log

MalformedMessage           4400: a frame or an update that does not decode; nothing is stored.
                           It is the CRDT layer's own error (crdt.MalformedUpdate), which the
                           lib0 decoders of the dialects raise too: `close_code` maps it.
"""

from __future__ import annotations

from crdt.errors import MalformedUpdate

# Close codes. 4400-4499 mean "do not retry"; 1013 means "try again later".
NORMAL = 1000
GOING_AWAY = 1001
TOO_LARGE = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
MALFORMED = 4400
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
TOO_MANY_REQUESTS = 4429  # as Hocuspocus's throttle closes


class CollabError(Exception):
    """Base of the errors of collaboration; `close_code` is what the socket is closed with."""

    close_code = INTERNAL_ERROR


# A frame, state vector, update or awareness payload that does not decode strictly.
MalformedMessage = MalformedUpdate


def close_code(error: CollabError | MalformedMessage) -> int:
    """The close code of an error that ends a socket."""
    return MALFORMED if isinstance(error, MalformedMessage) else error.close_code


class AdmissionError(CollabError):
    """The socket may not join the project's room."""


class Unauthenticated(AdmissionError):
    close_code = UNAUTHENTICATED


class Forbidden(AdmissionError):
    close_code = FORBIDDEN


class NoSuchProject(AdmissionError):
    close_code = NOT_FOUND


class TooManySockets(AdmissionError):
    close_code = TOO_MANY_REQUESTS


class MessageTooLarge(CollabError):
    close_code = TOO_LARGE


class TooManyRequests(CollabError):
    """A socket asked for more large sync answers than its budget (jacameno.collab.budget)."""

    close_code = TOO_MANY_REQUESTS


class RoomUnavailable(CollabError):
    """The room's log is unavailable or the room was dropped; clients reconnect later."""

    close_code = TRY_AGAIN_LATER
