"""SIGKILL `jacameno serve` in on-receipt mode between an early broadcast and its commit, with
real JavaScript clients, on SQLite and Postgres.

The delay is injected from outside the server: another connection holds the log's write lock
(SQLite: BEGIN IMMEDIATE; Postgres: the sequencer row every append takes), so the room's append
waits while the other socket already shows the edit. Then the server dies. Whatever any client
saw must reach the log once the clients reconnect, under the user who made it even when another
client brings it back first, and nothing acknowledged is lost."""

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
            # The killed server's append is still queued behind the lock, in a backend that has
            # not noticed its client is gone: released now, it would commit the edit after all.
            # A node that dies may take its transaction with it; end those backends first.
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
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
            await wait_until(lambda: recorded(database_url, project), "the node recorded it")
            await server.kill()  # between the broadcast and its commit
        seen = await editor.state()
        assert "seen" in str(seen.json)
        owner_state = await owner.state()
        assert owner_state.unacked >= 1  # never acknowledged

        await asyncio.gather(owner.disconnect(), editor.disconnect())
        await server.restart()
        logged = await documents.from_log(database_url, project)
        assert not documents.missing_from(logged, acked), "an acknowledged edit was lost"
        # The clients come back, Bob first: his sync step 2 brings Alice's unacknowledged edit
        # to the log, under her name (the node recorded what it sent her way early,
        # jacameno.collab.ledger); hers then adds nothing.
        await editor.connect(server.ws_url, project, bob.token)

        async def brought_back() -> bool:
            return len(await documents.logged_updates(database_url, project)) >= 2

        await wait_until(brought_back, "the editor brought the edit back")
        await owner.connect(server.ws_url, project, alice.token)
        await asyncio.gather(owner.wait_settled(), editor.wait_settled())
        final = await converged([owner, editor], [])
        logged = await documents.from_log(database_url, project)
        assert not documents.missing_from(logged, [seen.update, owner_state.update])
        assert documents.from_doc(logged) == final
        updates = await documents.logged_updates(database_url, project)
        assert [u["data"] for u in updates[:1]] == acked
        first, brought = (u["metadata"] for u in updates[:2])
        assert first["user_id"] == alice.id
        assert brought["user_id"] == alice.id
        assert brought["brought_by"] == bob.id
        assert brought["client_id"] == owner_state.client_id
        assert len(updates) == 2, "Alice's resend logged again"


async def recorded(database_url: str, project: str) -> bool:
    """Whether the node's ledger holds what it sent early in `project`."""
    query = "SELECT count(*) FROM collab_early WHERE project_id = $1"
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///") + ".early"
        with contextlib.closing(sqlite3.connect(path)) as ledger:
            return bool(ledger.execute(query.replace("$1", "?"), (project,)).fetchone()[0])
    connection = await asyncpg.connect(database_url)
    try:
        return bool(await connection.fetchval(query, project))
    finally:
        await connection.close()
