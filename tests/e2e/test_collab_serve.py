"""`jacameno serve` as a real process with Python Yjs clients only: edits converge, and after a
SIGKILL and a restart the document is exactly what was acknowledged (echoed) before the kill."""

from __future__ import annotations

import asyncio

from pycrdt import Text

from harness.server import ServerProcess
from harness.waiting import eventually
from tests.e2e.clients import python_client


async def test_acknowledged_edits_survive_a_sigkill(server: ServerProcess) -> None:
    alice, bob = await asyncio.gather(server.user("alice"), server.user("bob"))
    project = await server.project(alice, (bob, "editor"))
    a = await python_client(server, project, alice.token)
    b = await python_client(server, project, bob.token)
    for i in range(50):
        client = a if i % 2 else b
        client.doc.get("lyrics", type=Text).insert(0, f"{i};")
    await eventually(lambda: len(a.echoes) == len(b.echoes) == 50)
    assert a.content() == b.content()
    acknowledged = a.content()
    await server.kill()
    await a.wait_closed()
    await server.restart()
    fresh = await python_client(server, project, alice.token)
    assert fresh.content() == acknowledged
    await fresh.close()
