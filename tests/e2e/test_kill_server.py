"""SIGKILL `jacameno serve` while JavaScript and Python clients type, on SQLite and Postgres, in
both broadcast modes.

The echo of an update is its durable acknowledgement. So whatever a client saw echoed before
the kill must be in the log and in the document of the restarted server, and once the clients
come back, what they typed unacknowledged converges too. In after-commit mode so must whatever a
client received at all from the server (the default); in on-receipt mode a client may have
received another's edit before it was durable, and it reaches the log once the clients come
back (tests/e2e/test_early_broadcast_kill.py has who it is logged under)."""

from __future__ import annotations

import asyncio
import itertools
import string
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from harness.server import ServerProcess, serving
from harness.waiting import eventually
from jacameno.collab import protocol
from tests.e2e import documents
from tests.e2e.clients import converged, python_client
from tests.e2e.conftest import JSClients
from tests.integration.collab.support import YClient

KEYSTROKES = 20_000  # more than the clients can type before the kill
ACKED_BEFORE_KILL = 60  # echoes each client waits for before the server is killed


async def type_in_python(client: YClient, stop: asyncio.Event) -> None:
    lyrics = client.doc.get("lyrics", type=Text)
    for char in itertools.cycle(string.ascii_uppercase):
        if stop.is_set() or client.close_code is not None:
            return
        lyrics.insert(len(lyrics), char)
        await asyncio.sleep(0.001)  # a typist's pace, and room for the reader task


def python_acked(client: YClient) -> list[bytes]:
    echoed = set(client.echoes)
    return [u for u in client.sent if u in echoed]


def python_durable(client: YClient) -> bytes:
    """Everything the Python client received from the server (after-commit: all of it was
    durable)."""
    doc: Doc[Any] = Doc()
    for message in client.messages:
        if isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
            doc.apply_update(message.update)
    return doc.get_update()


@pytest.mark.parametrize("mode", ["after-commit", "on-receipt"])
async def test_acknowledged_updates_survive_a_sigkill(
    js_client: JSClients, database_url: str, tmp_path: Path, mode: str
) -> None:
    environment = {"JACAMENO_COLLAB_BROADCAST": mode}
    async with serving(database_url, tmp_path, environment) as server:
        await _type_kill_and_restart(server, js_client, database_url, mode == "after-commit")


async def _type_kill_and_restart(
    server: ServerProcess, js_client: JSClients, database_url: str, received_is_durable: bool
) -> None:
    alice, bob, carol = await asyncio.gather(
        server.user("alice"), server.user("bob"), server.user("carol")
    )
    project = await server.project(alice, (bob, "editor"), (carol, "editor"))
    owner, editor = await asyncio.gather(js_client("alice"), js_client("bob"))
    await owner.connect(server.ws_url, project, alice.token)
    await editor.connect(server.ws_url, project, bob.token)
    await asyncio.gather(owner.wait_synced(), editor.wait_synced())
    python = await python_client(server, project, carol.token)

    stop = asyncio.Event()
    typist = asyncio.create_task(type_in_python(python, stop))
    await owner.start_typing(string.ascii_lowercase * 1000, delete_every=7, interval_ms=1)
    await editor.start_typing(string.digits * 2000, interval_ms=1)
    await asyncio.gather(
        owner.wait_acked(ACKED_BEFORE_KILL),
        editor.wait_acked(ACKED_BEFORE_KILL),
        eventually(lambda: len(python_acked(python)) >= ACKED_BEFORE_KILL),
    )
    await server.kill()

    # Nothing the clients do from here can reach a server: record what was acknowledged.
    await python.wait_closed()
    stop.set()
    await typist
    await asyncio.gather(owner.stop_typing(), editor.stop_typing())
    await asyncio.gather(owner.disconnect(), editor.disconnect())
    owner_state, editor_state = await asyncio.gather(owner.state(), editor.state())
    acked = {
        "alice": owner_state.acked,
        "bob": editor_state.acked,
        "carol": python_acked(python),
    }
    in_flight = owner_state.unacked + editor_state.unacked + len(python.sent) - len(acked["carol"])
    assert in_flight > 0, "the kill should land while updates are unacknowledged"
    durable = [owner_state.durable, editor_state.durable, python_durable(python)]
    for name, updates in acked.items():
        assert len(updates) >= ACKED_BEFORE_KILL, name

    await server.restart()
    fresh = await python_client(server, project, alice.token)
    logged = await documents.from_log(database_url, project)
    for name, updates in acked.items():
        assert not documents.missing_from(fresh.doc, updates), f"the server lost {name}'s acks"
        assert not documents.missing_from(logged, updates), f"the log lost {name}'s acks"
    if received_is_durable:
        assert not documents.missing_from(fresh.doc, durable)
    assert documents.from_doc(logged) == documents.from_doc(fresh.doc)

    # The JS clients come back and resend what was never acknowledged: nothing is lost.
    await owner.connect(server.ws_url, project, alice.token)
    await editor.connect(server.ws_url, project, bob.token)
    await asyncio.gather(owner.wait_settled(), editor.wait_settled())
    final = await converged([owner, editor], [fresh])
    assert not documents.missing_from(fresh.doc, [owner_state.update, editor_state.update])
    # Whatever they received before the kill, durable or not, is in the log now.
    assert not documents.missing_from(fresh.doc, durable[:2])
    assert documents.from_doc(await documents.from_log(database_url, project)) == final
    await python.close()
    await fresh.close()
