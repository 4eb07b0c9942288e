"""The y-websocket wire format, decoded strictly."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Text, create_sync_message, create_update_message

from jacameno.collab import awareness, protocol
from jacameno.collab.errors import MalformedMessage


def test_messages_match_what_pycrdt_encodes() -> None:
    doc: Doc[Text] = Doc()
    doc["t"] = text = Text()
    text += "hello"
    assert protocol.decode(create_sync_message(doc)) == protocol.SyncStep1(doc.get_state())
    update = doc.get_update()
    assert protocol.encode_update(update) == create_update_message(update)
    assert protocol.decode(protocol.encode_update(update)) == protocol.SyncUpdate(update)
    assert protocol.decode(protocol.encode_sync_step2(update)) == protocol.SyncStep2(update)


def test_auth_and_query_awareness_decode() -> None:
    denied = protocol.decode(protocol.encode_permission_denied("read-only"))
    assert denied == protocol.Auth(protocol.AUTH_PERMISSION_DENIED, "read-only")
    assert protocol.decode(protocol.encode_query_awareness()) == protocol.QueryAwareness()


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x04", b"\x00", b"\x00\x03\x00", b"\x00\x02\x05ab", b"\x00\x02\x01ab", b"\x03\x00"],
    ids=["empty", "unknown type", "no step", "unknown step", "short", "trailing", "trailing q"],
)
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        protocol.decode(frame)


@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_either_succeeds_or_raises_malformed(frame: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        protocol.decode(frame)


def test_awareness_states_follow_the_y_protocols_rule() -> None:
    states = awareness.AwarenessStates(max_state_bytes=1024, max_total_bytes=4096)

    def apply(entry: awareness.Entry) -> tuple[list[int], list[int]]:
        applied = states.apply([entry])
        return applied.present, applied.removed

    assert apply(awareness.Entry(1, 1, '{"a":1}')) == ([1], [])
    assert apply(awareness.Entry(1, 1, '{"a":2}')) == ([], [])  # same clock: ignored
    assert apply(awareness.Entry(1, 1, "null")) == ([], [1])  # removal wins a tie
    assert states.encoded() is None
    states.apply([awareness.Entry(2, 4, '{"b":1}')])
    removal = states.remove([2, 3])
    assert removal is not None
    assert awareness.decode(removal) == [awareness.Entry(2, 5, "null")]


@pytest.mark.parametrize("state", ["{x}", "[" * 100 + "]" * 100, "NaN", '{"a":Infinity}'], ids=str)
def test_awareness_states_must_be_plain_json(state: str) -> None:
    payload = awareness.encode([awareness.Entry(1, 1, state)])
    with pytest.raises(MalformedMessage):
        awareness.decode(payload)
