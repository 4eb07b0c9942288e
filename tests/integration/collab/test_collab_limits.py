"""Hostile and oversized input, slow sockets, idle sockets: the sender is closed, nothing is
stored, and the room keeps serving everyone else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pycrdt import Text
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError

from crdt.encoding import write_var_bytes, write_var_uint
from domain import events
from harness.waiting import eventually
from jacameno.collab import protocol
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, YClient, serving


def _item_any(value: bytes, *, client: int = 5, clock: int = 0) -> bytes:
    """A v1 update with one struct: map `meta`, key `k`, lib0 `any` content `value`."""
    struct = (
        bytes([8 | 32])
        + write_var_uint(1)
        + write_var_bytes(b"meta")
        + write_var_bytes(b"k")
        + write_var_uint(1)
        + value
    )
    return (
        write_var_uint(1)
        + write_var_uint(1)
        + write_var_uint(client)
        + write_var_uint(clock)
        + struct
        + write_var_uint(0)
    )


HOSTILE = {
    "garbage": b"\x01\x02\x03",
    "trailing bytes": b"\x00\x00\x00",
    "deep nesting": _item_any(b"\x75\x01" * 30_000 + b"\x7e"),
    "huge clock": _item_any(b"\x7e", clock=2**40),
    "huge client id": _item_any(b"\x7e", client=2**63),
    "huge integer": _item_any(b"\x7d" + b"\xff" * 12 + b"\x01"),
    "huge array length": _item_any(b"\x75" + write_var_uint(2**40)),
    "bigint": _item_any(b"\x7a" + (2**63 - 1).to_bytes(8, "big")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_updates_close_4400_store_nothing_and_spare_the_room(
    server: Server, name: str
) -> None:
    project, bystander, attacker = await server.two_synced()
    await attacker.send(protocol.encode_update(HOSTILE[name]))
    assert await attacker.wait_closed() == 4400
    await server.assert_unharmed(project, bystander)


async def test_a_malformed_frame_closes_4400(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    await client.send(b"\x09\x00")
    assert await client.wait_closed() == 4400
    assert await server.events(project, events.DOC_UPDATED) == []


async def test_a_text_frame_closes_4400(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    assert client.ws is not None
    await client.ws.send("hello")
    assert await client.wait_closed() == 4400


@pytest.fixture
def config() -> CollabConfig:
    return CollabConfig(
        max_message_bytes=64 * 1024,
        max_document_bytes=256 * 1024,
        outbound_messages=8,
        outbound_bytes=256 * 1024,
        idle_timeout=1.0,
        unload_delay=0.2,
        close_timeout=2.0,
    )


async def test_an_oversized_message_closes_1009(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    await client.sync()
    client.doc.get("lyrics", type=Text).insert(0, "x" * 70_000)
    assert await client.wait_closed() == 1009
    assert await server.events(project, events.DOC_UPDATED) == []


async def test_a_document_over_its_maximum_size_closes_1009(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    await client.sync()
    text = client.doc.get("lyrics", type=Text)
    for _ in range(4):
        text.insert(0, "y" * 60_000)
    await eventually(lambda: len(client.echoes) == 4)
    text.insert(0, "z" * 60_000)
    assert await client.wait_closed() == 1009
    assert len(await server.events(project, events.DOC_UPDATED)) == 4


@pytest.mark.parametrize("asgi_sends", [False, True], ids=["frames", "asgi"])
async def test_a_slow_socket_is_closed_with_1013(settings: Settings, asgi_sends: bool) -> None:
    config = CollabConfig(
        max_message_bytes=64 * 1024, outbound_messages=8, outbound_bytes=256 * 1024
    )
    async with serving(settings, config, asgi_sends=asgi_sends) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        writer = await server.client(project, alice)
        server.limit_send_buffer(16 * 1024)
        slow = YClient(
            server, project, alice.token, max_queue=1, read=False, receive_buffer=16 * 1024
        )
        await slow.connect()
        await writer.sync()
        text = writer.doc.get("lyrics", type=Text)
        for i in range(100):
            text.insert(0, f"{i:04d}" * 5_000)
            await eventually(lambda n=i: len(writer.echoes) > n)  # type: ignore[misc]
        # Now read: whatever was in flight, then the close.
        assert slow.ws is not None
        with pytest.raises(ConnectionClosedError):
            await _drain(slow.ws)
        assert slow.ws.close_code == 1013
        assert writer.close_code is None
        await writer.close()


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def test_an_idle_socket_is_closed(settings: Settings, config: CollabConfig) -> None:
    # End to end, on a short timeout; how frames keep a socket alive is tested on a manual
    # clock (tests/unit/test_collab_connection.py).
    async with serving(settings, dataclasses.replace(config, idle_timeout=0.2)) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        assert await client.wait_closed(timeout=5) == 1000
        assert client.close_reason == "idle"


async def test_the_limits_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "JACAMENO_DATA_DIR": str(tmp_path),
            "JACAMENO_COLLAB_MAX_MESSAGE_BYTES": "1000",
            "JACAMENO_COLLAB_IDLE_TIMEOUT": "2.5",
        }
    )
    assert settings.collab.max_message_bytes == 1000
    assert settings.collab.idle_timeout == 2.5
    async with serving(settings) as server:
        assert server.rooms.config.max_message_bytes == 1000
