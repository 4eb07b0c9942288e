"""The audit's document that nobody could open, and its BigInt, with the real JavaScript clients:
an editor's five 3.5 MB updates make an 18 MB document, which a fresh y-websocket or Hocuspocus
provider then loads whole (its sync answer is larger than the 16 MiB outbound bound, and is not
taken for a slow socket); a BigInt closes its sender with 4400 and reaches neither the log nor
the other clients."""

from __future__ import annotations

import pytest

from harness.server import ServerProcess
from tests.e2e import documents
from tests.e2e.clients import owner_and_member
from tests.e2e.conftest import JSClients

PIECE = 3_500_000  # characters, one byte each: an update just under the 4 MiB frame limit


@pytest.mark.parametrize("dialect", ["y-websocket", "hocuspocus"])
async def test_an_18_mb_document_of_five_updates_opens_in_a_fresh_provider(
    server: ServerProcess, js_client: JSClients, dialect: str
) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    editor = await js_client("editor")
    await editor.connect(server.ws_url, project, alice.token)
    await editor.wait_synced()
    for i in range(5):
        await editor.edit(["lyrics.fill", "abcde"[i], PIECE])
        await editor.wait_acked(i + 1, timeout=30)
    fresh = await js_client("fresh")
    await fresh.connect(server.ws_url, project, alice.token, dialect=dialect)
    await fresh.wait_synced(timeout=30)
    measured = await fresh.measure()
    assert measured["lyrics_length"] == 5 * PIECE
    assert not [e for e in fresh.events + editor.events if e["event"] == "closed"]


async def test_a_bigint_closes_its_sender_4400_and_reaches_nobody(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    alice, _bob, project, owner, sender = await owner_and_member(server, js_client, "bob", "editor")

    await sender.edit(["meta.set_bigint", "count", str(2**63 - 1)])
    closed = await sender.wait_event(lambda e: e["event"] == "closed")
    assert closed["code"] == 4400
    assert "BigInt" in closed["reason"]

    await owner.edit(["meta.set", "bpm", 100])
    await owner.wait_settled()
    assert (await owner.measure())["meta_keys"] == ["bpm"]
    assert not [e for e in owner.events if e["event"] == "closed"]
    logged = await documents.logged_updates(database_url, project)
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id}
    late = await js_client("late")
    await late.connect(server.ws_url, project, alice.token)
    await late.wait_synced()
    assert (await late.measure())["meta_keys"] == ["bpm"]
