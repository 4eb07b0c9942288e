"""Awareness cannot be turned against a room: one state and the room's states are bounded (a
newcomer is always sent them all and syncs), a socket sets and removes only the client ids it
introduced, and the clocks of removed clients do not pile up while the room is loaded."""

from __future__ import annotations

import json

from harness.waiting import eventually
from jacameno.collab import awareness, protocol
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, serving


def _awareness(*entries: tuple[int, int, object]) -> bytes:
    encoded = [awareness.Entry(c, clock, json.dumps(state)) for c, clock, state in entries]
    return protocol.encode_awareness(awareness.encode(encoded))


async def test_an_oversized_awareness_state_is_dropped_and_the_socket_stays(
    server: Server,
) -> None:
    _alice, _vera, _project, owner, viewer = await server.owner_and_member("viewer")
    await viewer.send(_awareness((5, 1, "x" * (64 * 1024)), (6, 1, {"user": "vera"})))
    await eventually(lambda: 6 in owner.awareness)
    assert 5 not in owner.awareness
    assert 5 not in viewer.awareness  # not even relayed back to its sender
    # The socket is still served.
    await viewer.send(_awareness((6, 2, {"user": "vera", "cursor": 1})))
    await eventually(lambda: "cursor" in owner.awareness.get(6, ""))
    assert (owner.close_code, viewer.close_code) == (None, None)


async def test_a_flood_of_presence_never_stops_newcomers_from_syncing(settings: Settings) -> None:
    # Outbound bounds small enough that the audit's 18.9 MB would be far over them (and frames
    # small enough that the limits agree).
    config = CollabConfig(unload_delay=0.2, max_message_bytes=256 * 1024, outbound_bytes=512 * 1024)
    async with serving(settings, config) as server:
        alice, _vera, project, owner, viewer = await server.owner_and_member("viewer")
        big = "x" * (60 * 1024)
        for first in range(1, 17, 3):  # three states a frame: each frame within the limit
            await viewer.send(_awareness(*((c, 1, big) for c in range(first, first + 3))))
        await eventually(lambda: len(owner.awareness) >= 4)
        live = server.rooms.loaded(project)
        assert live is not None
        assert live.awareness.total_bytes <= 256 * 1024  # half the outbound bound
        for _ in range(3):
            newcomer = await server.client(project, alice)
            await newcomer.sync()
            await eventually(lambda: len(newcomer.awareness) == len(live.awareness))  # noqa: B023
            assert newcomer.synced
            assert newcomer.close_code is None
            await newcomer.close()
        assert viewer.close_code is None  # its extra states were dropped, not fatal
        await owner.close()
        await viewer.close()


async def test_nobody_sets_or_removes_another_sockets_presence(server: Server) -> None:
    _alice, _vera, _project, owner, viewer = await server.owner_and_member("viewer")
    await owner.send(_awareness((7, 3, {"user": "alice"})))
    await eventually(lambda: viewer.awareness.get(7) == '{"user": "alice"}')
    await viewer.send(_awareness((7, 99, {"user": "mallory"}), (8, 1, {"user": "vera"})))
    await eventually(lambda: 8 in owner.awareness)
    await viewer.send(_awareness((7, 100, None)))
    await viewer.send(_awareness((8, 2, {"user": "vera", "again": 1})))
    await eventually(lambda: "again" in owner.awareness.get(8, ""))
    assert owner.awareness[7] == viewer.awareness[7] == '{"user": "alice"}'
    # The owner's own updates still count; once its socket leaves the id is free.
    await owner.send(_awareness((7, 4, {"user": "alice", "cursor": 1})))
    await eventually(lambda: "cursor" in viewer.awareness.get(7, ""))
    await owner.close()
    await eventually(lambda: 7 not in viewer.awareness)
    await viewer.send(_awareness((7, 200, {"user": "vera's second tab"})))
    await eventually(lambda: viewer.awareness.get(7) == '{"user": "vera\'s second tab"}')
    await viewer.close()


async def test_announcing_and_removing_many_ids_keeps_the_table_bounded(
    settings: Settings,
) -> None:
    config = CollabConfig(unload_delay=0.2, awareness_removed_kept=500)
    async with serving(settings, config) as server:
        _alice, _vera, project, owner, viewer = await server.owner_and_member("viewer")
        live = server.rooms.loaded(project)
        assert live is not None
        for batch in range(200):
            ids = range(batch * 16, batch * 16 + 16)
            await viewer.send(_awareness(*((i, 1, {"n": i}) for i in ids)))
            await viewer.send(_awareness(*((i, 2, None) for i in ids)))
        await viewer.send(_awareness((99_999, 1, {"last": True})))
        await eventually(lambda: 99_999 in owner.awareness)
        assert len(live.awareness) == 1
        assert live.awareness.remembered <= 501
        assert viewer.close_code is None
        await owner.close()
        await viewer.close()
