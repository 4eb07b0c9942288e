"""Frames we frame ourselves parse as websockets parses a server's frames, at every length
encoding; the flusher runs each callback once per turn of the loop."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from jacameno.collab import wire


def _parse(data: bytes) -> WsFrame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = WsFrame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as stop:
        next(parser)
    assert not reader.buffer, "bytes left after the frame"
    frame: WsFrame = stop.value.value
    return frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 300_000])
def test_a_frame_parses_back_to_its_payload(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = _parse(wire.frame_binary(payload))
    assert frame.opcode is Opcode.BINARY
    assert frame.fin
    assert frame.data == payload


def test_a_frame_is_framed_once() -> None:
    frame = wire.Frame(b"\x00\x02\x01\x00")
    assert frame.wire is frame.wire
    assert _parse(frame.wire).data == frame.payload


async def test_the_flusher_runs_each_callback_at_the_next_turn() -> None:
    ran: list[str] = []
    flusher = wire.flusher()
    assert wire.flusher() is flusher
    flusher.schedule(lambda: ran.append("a"))
    flusher.schedule(lambda: ran.append("b"))
    assert ran == []
    await asyncio.sleep(0)
    assert ran == ["a", "b"]
    await asyncio.sleep(0)
    assert ran == ["a", "b"]


async def test_a_failing_flush_does_not_hold_back_the_others() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise OSError("socket gone")

    flusher = wire.flusher()
    flusher.schedule(broken)
    flusher.schedule(lambda: ran.append("next"))
    await asyncio.sleep(0)
    assert ran == ["next"]
