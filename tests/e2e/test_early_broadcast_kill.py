"""SIGKILL `jacameno serve` in on-receipt mode between an early broadcast and its commit, with
real JavaScript clients, on SQLite and Postgres.

The delay is injected from outside the server: another connection holds the log's write lock
(SQLite: BEGIN IMMEDIATE; Postgres: the sequencer row every append takes), so the room's append
waits while the other socket already shows the edit. Then the server dies. Whatever any client
saw must reach the log once the clients reconnect, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from harness.server import serving
from harness.waiting import wait_until
from tests.e2e import documents
from tests.e2e.clients import converged
from tests.e2e.conftest import JSClients


@contextlib.asynccontextmanager
async def writes_held(database_url: str) -> AsyncIterator[None]:
    """Hold the log's write lock from another connection until the block ends."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    connection = await asyncpg.connect(database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SELECT position FROM es_sequencer WHERE id = 1 FOR UPDATE")
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


async def test_an_edit_seen_before_its_commit_survives_a_sigkill(
    js_client: JSClients, database_url: str, tmp_path: Path
) -> None:
    environment = {
        "JACAMENO_COLLAB_BROADCAST": "on-receipt",
        "JACAMENO_COLLAB_APPEND_TIMEOUT": "30",  # the held append must not fail the room first
    }
    async with serving(database_url, tmp_path, environment) as server:
        alice, bob = await asyncio.gather(server.user("alice"), server.user("bob"))
        project = await server.project(alice, (bob, "editor"))
        owner, editor = await asyncio.gather(js_client("alice"), js_client("bob"))
        await owner.connect(server.ws_url, project, alice.token)
        await editor.connect(server.ws_url, project, bob.token)
        await asyncio.gather(owner.wait_synced(), editor.wait_synced())
        await owner.edit(["lyrics.insert", 0, "acked "])
        await owner.wait_acked(1)
        acked = (await owner.state()).acked

        async with writes_held(database_url):
            await owner.edit(["lyrics.insert", 0, "seen "])

            async def editor_sees_it() -> bool:
                return "seen" in str((await editor.state()).json)

            await wait_until(editor_sees_it, "the editor sees the held edit")
            await server.kill()  # between the broadcast and its commit
        seen = await editor.state()
        assert "seen" in str(seen.json)
        owner_state = await owner.state()
        assert owner_state.unacked >= 1  # never acknowledged

        await asyncio.gather(owner.disconnect(), editor.disconnect())
        await server.restart()
        logged = await documents.from_log(database_url, project)
        assert not documents.missing_from(logged, acked), "an acknowledged edit was lost"
        # The clients come back; whoever syncs first brings the unacknowledged edit to the log.
        await editor.connect(server.ws_url, project, bob.token)
        await owner.connect(server.ws_url, project, alice.token)
        await asyncio.gather(owner.wait_settled(), editor.wait_settled())
        final = await converged([owner, editor], [])
        logged = await documents.from_log(database_url, project)
        assert not documents.missing_from(logged, [seen.update, owner_state.update])
        assert documents.from_doc(logged) == final
        # The acknowledged edit is Alice's in the log. The one the node died holding is logged
        # under whoever brought it back first; its Yjs client id still says it is Alice's
        # client's (docs/collaboration.md, "Broadcast modes": the server does not move
        # authorship on a client's word).
        updates = await documents.logged_updates(database_url, project)
        by_data = {bytes(u["data"]): u["metadata"] for u in updates}
        assert by_data[acked[0]]["user_id"] == alice.id
        brought_back = [m for d, m in by_data.items() if d != acked[0]]
        assert brought_back
        assert all(m["user_id"] in (alice.id, bob.id) for m in brought_back)
        assert any(
            owner_state.client_id in (m.get("client_ids") or [m["client_id"]]) for m in brought_back
        )
