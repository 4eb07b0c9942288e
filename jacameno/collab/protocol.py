"""The y-websocket v1 wire protocol: one message per WebSocket frame.

    frame       = varuint(message type) payload
    sync        = 0 varuint(step) varbytes     step 0: state vector, 1: update (step 2), 2: update
    awareness   = 1 varbytes(awareness update)
    auth        = 2 varuint(0 = permission denied) varstring(reason)
    query aw.   = 3

Decoding is strict: unknown types, short payloads and trailing bytes raise MalformedMessage. The
payloads themselves (state vectors, updates, awareness) are checked by their own modules."""

from __future__ import annotations

from dataclasses import dataclass

from crdt.encoding import Reader, write_var_bytes, write_var_string, write_var_uint

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class Awareness:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    kind: int
    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = SyncStep1 | SyncStep2 | SyncUpdate | Awareness | Auth | QueryAwareness


def decode(frame: bytes) -> Message:
    """The one message in `frame`; MalformedMessage if it is not exactly one valid message."""
    reader = Reader(frame, "message")
    kind = reader.var_uint()
    message: Message
    if kind == MESSAGE_SYNC:
        message = decode_sync(reader)
    elif kind == MESSAGE_AWARENESS:
        message = Awareness(reader.var_bytes())
    elif kind == MESSAGE_AUTH:
        message = Auth(reader.var_uint(), reader.var_string())
    elif kind == MESSAGE_QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        raise reader.fail(f"unknown message type {kind}")
    reader.end()
    return message


def decode_sync(reader: Reader) -> SyncStep1 | SyncStep2 | SyncUpdate:
    """A sync message's body (`varuint(step) varbytes`), which Hocuspocus frames the same way."""
    step = reader.var_uint()
    payload = reader.var_bytes()
    if step == SYNC_STEP1:
        return SyncStep1(payload)
    if step == SYNC_STEP2:
        return SyncStep2(payload)
    if step == SYNC_UPDATE:
        return SyncUpdate(payload)
    raise reader.fail(f"unknown sync step {step}")


_SYNC = bytes((MESSAGE_SYNC,))


def encode_sync_step1(state_vector: bytes) -> bytes:
    return _SYNC + bytes((SYNC_STEP1,)) + write_var_bytes(state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return _SYNC + bytes((SYNC_STEP2,)) + write_var_bytes(update)


def encode_update(update: bytes) -> bytes:
    return _SYNC + bytes((SYNC_UPDATE,)) + write_var_bytes(update)


def encode_awareness(payload: bytes) -> bytes:
    return bytes((MESSAGE_AWARENESS,)) + write_var_bytes(payload)


def encode_query_awareness() -> bytes:
    return bytes((MESSAGE_QUERY_AWARENESS,))


def encode_permission_denied(reason: str) -> bytes:
    return (
        bytes((MESSAGE_AUTH,)) + write_var_uint(AUTH_PERMISSION_DENIED) + write_var_string(reason)
    )
