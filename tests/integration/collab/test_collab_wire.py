"""Both ways frames leave the server: written straight to the transport (our uvicorn protocol)
and through plain ASGI sends (any other server). Clients converge either way, large messages
(every WebSocket length encoding) arrive whole, and the server says which way it used."""

from __future__ import annotations

import pytest
from pycrdt import Text

from harness.waiting import eventually
from jacameno.settings import Settings
from tests.integration.collab.support import serving


@pytest.mark.parametrize("asgi_sends", [False, True], ids=["frames", "asgi"])
async def test_updates_of_every_size_reach_every_client(
    settings: Settings, asgi_sends: bool
) -> None:
    async with serving(settings, asgi_sends=asgi_sends) as server:
        _alice, _bob, project, a, b = await server.owner_and_member("editor")
        room = server.rooms.loaded(project)
        assert room is not None
        connections = [p.connection for p in room.peers.values()]
        assert [c.writes_frames for c in connections] == [not asgi_sends] * 2
        text = a.doc.get("lyrics", type=Text)
        for size in (1, 100, 1_000, 70_000, 200_000):
            text.insert(0, "x" * size)
        await eventually(lambda: len(a.echoes) == 5)
        await eventually(lambda: b.content() == a.content())
        assert len(str(b.doc.get("lyrics", type=Text))) == 271_101
        await a.close()
        await b.close()
