"""A minimal y-websocket v1 codec for the load harness, written apart from the server's own
(`jacameno.collab.protocol`) so that the benchmark also checks the wire format independently.

    frame     = varuint(type) payload, one message per WebSocket frame
    sync      = 0 varuint(step) varbytes   step 0: state vector, 1: update (step 2), 2: update
    awareness = 1 varbytes
    auth      = 2 varuint(reason kind) varstring
    query aw. = 3
"""

from __future__ import annotations

from dataclasses import dataclass

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

# The first two bytes of every sync update frame: what the receive path tests for first.
UPDATE_PREFIX = bytes((MESSAGE_SYNC, SYNC_UPDATE))


class CodecError(ValueError):
    """A frame that is not one well-formed y-websocket v1 message."""


def var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varuint must be >= 0")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it)."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise CodecError("truncated varuint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CodecError("varuint too long")


def _var_bytes(data: bytes, pos: int) -> bytes:
    length, pos = read_var_uint(data, pos)
    if pos + length != len(data):
        raise CodecError(f"payload of {length} bytes, {len(data) - pos} in the frame")
    return data[pos:]


def sync_step1(state_vector: bytes) -> bytes:
    return bytes((MESSAGE_SYNC, SYNC_STEP1)) + var_uint(len(state_vector)) + state_vector


def sync_step2(update: bytes) -> bytes:
    return bytes((MESSAGE_SYNC, SYNC_STEP2)) + var_uint(len(update)) + update


def sync_update(update: bytes) -> bytes:
    return UPDATE_PREFIX + var_uint(len(update)) + update


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message: `kind` is the message type, `step` the sync step (or -1), `payload`
    the state vector, update or awareness bytes (auth: the reason, UTF-8)."""

    kind: int
    step: int
    payload: bytes


def decode(frame: bytes) -> Message:
    kind, pos = read_var_uint(frame, 0)
    if kind == MESSAGE_SYNC:
        step, pos = read_var_uint(frame, pos)
        if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise CodecError(f"unknown sync step {step}")
        return Message(kind, step, _var_bytes(frame, pos))
    if kind == MESSAGE_AWARENESS:
        return Message(kind, -1, _var_bytes(frame, pos))
    if kind == MESSAGE_AUTH:
        reason_kind, pos = read_var_uint(frame, pos)
        return Message(kind, reason_kind, _var_bytes(frame, pos))
    if kind == MESSAGE_QUERY_AWARENESS:
        if pos != len(frame):
            raise CodecError("trailing bytes after query awareness")
        return Message(kind, -1, b"")
    raise CodecError(f"unknown message type {kind}")


def update_payload(frame: bytes) -> bytes | None:
    """The update of a sync update frame, or None for any other frame: the hot receive path,
    without building a Message."""
    if frame[:2] != UPDATE_PREFIX:
        return None
    if frame[2] < 0x80:  # one-byte length: updates under 128 bytes, nearly all of ours
        if frame[2] + 3 != len(frame):
            raise CodecError("update length does not match the frame")
        return frame[3:]
    return _var_bytes(frame, 2)
