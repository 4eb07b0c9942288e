"""Admission at the upgrade (4401, 4403, 4404), tokens in the query or the subprotocol, and
viewers whose updates are refused and never logged."""

from __future__ import annotations

import asyncio
import uuid

from pycrdt import Text

from domain import events
from harness.waiting import eventually
from jacameno.collab import protocol
from tests.integration.collab.support import Server, YClient


async def _close_code(server: Server, project_id: str, token: str | None) -> int:
    client = YClient(server, project_id, token)
    await client.connect()
    return await client.wait_closed()


async def test_a_bad_or_missing_token_is_closed_with_4401(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    assert await _close_code(server, project, "not-a-jwt") == 4401
    assert await _close_code(server, project, None) == 4401
    assert await _close_code(server, project, alice.token[:-4] + "AAAA") == 4401


async def test_a_non_member_is_closed_with_4403(server: Server) -> None:
    alice, mallory = await server.user("alice"), await server.user("mallory")
    project = await server.project(alice)
    assert await _close_code(server, project, mallory.token) == 4403


async def test_an_unknown_project_is_closed_with_4404(server: Server) -> None:
    alice = await server.user("alice")
    assert await _close_code(server, str(uuid.uuid4()), alice.token) == 4404
    assert await _close_code(server, "not-a-uuid", alice.token) == 4404


async def test_the_token_may_come_as_a_subprotocol(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = YClient(
        server,
        project,
        alice.token,
        use_query=False,
        subprotocols=["jacameno", f"bearer.{alice.token}"],
    )
    await client.connect()
    assert client.ws is not None
    assert client.ws.subprotocol == "jacameno"
    await client.sync()
    assert client.close_code is None
    await client.close()


async def test_viewer_updates_are_refused_and_never_logged(server: Server) -> None:
    alice, _vera, project, owner, viewer = await server.owner_and_member("viewer", "alice", "vera")
    owner.doc.get("lyrics", type=Text).insert(0, "from the owner")
    await eventually(lambda: "owner" in viewer.content()["lyrics"])
    viewer.doc.get("lyrics", type=Text).insert(0, "from the viewer ")
    await eventually(lambda: any(isinstance(m, protocol.Auth) for m in viewer.messages))
    denied = next(m for m in viewer.messages if isinstance(m, protocol.Auth))
    assert denied.kind == protocol.AUTH_PERMISSION_DENIED
    # The viewer stays connected and keeps receiving.
    owner.doc.get("lyrics", type=Text).insert(0, "more ")
    await eventually(lambda: len(viewer.echoes) == 2)
    assert viewer.close_code is None
    assert "viewer" not in owner.content()["lyrics"]
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.metadata["user_id"] for e in logged] == [alice.id, alice.id]
    await owner.close()
    await viewer.close()


async def test_session_joins_and_leaves_are_logged(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    client = await server.client(project, alice)
    await client.sync()
    await client.close()
    await eventually(lambda: project not in server.rooms)
    joined = await server.events(project, events.SESSION_JOINED)
    left = await server.events(project, events.SESSION_LEFT)
    assert len(joined) == len(left) == 1
    assert joined[0].metadata["user_id"] == alice.id
    assert left[0].metadata["connection_id"] == joined[0].metadata["connection_id"]


async def test_members_opening_a_project_at_once_read_no_user(server: Server) -> None:
    """They wait for one read of the project's members, which finds their accounts too
    (jacameno.collab.gatekeeper)."""
    alice = await server.user("alice")
    members = [await server.user(f"member-{i}") for i in range(8)]
    project = await server.project(alice, *((m, "editor") for m in members))
    users = server.app.state.services.identity.users
    reads = users.reads
    joiners = [YClient(server, project, u.token) for u in (alice, *members)]
    await asyncio.gather(*(c.connect() for c in joiners))
    await asyncio.gather(*(c.sync() for c in joiners))
    assert users.reads == reads
    for client in joiners:
        await client.close()


async def test_sockets_joining_at_once_are_let_in_or_refused_each_as_alone(server: Server) -> None:
    """Their token checks share reads (jacameno.coalesce) and run beside the project's read:
    every member syncs, and a non-member and a deleted user among them get their close code
    and not a byte of the document."""
    alice, mallory, gone = [await server.user(n) for n in ("alice", "mallory", "gone")]
    members = [await server.user(f"member-{i}") for i in range(12)]
    project = await server.project(alice, *((m, "editor") for m in [*members, gone]))
    author = await server.client(project, alice)
    await author.sync()
    author.doc.get("lyrics", type=Text).insert(0, "not for everyone")
    await eventually(lambda: len(author.echoes) == 1)
    await author.close()
    await server.app.state.services.identity.accounts.delete(gone.id)
    joiners = [YClient(server, project, u.token) for u in (*members, mallory, gone)]
    await asyncio.gather(*(c.connect() for c in joiners))
    await asyncio.gather(*(c.sync() for c in joiners[:-2]))
    for client in joiners[:-2]:
        assert client.close_code is None
        assert client.content()["lyrics"] == "not for everyone"
    assert await joiners[-2].wait_closed() == 4403
    assert await joiners[-1].wait_closed() == 4401
    for refused in joiners[-2:]:
        assert refused.messages == []
    for client in joiners:
        await client.close()
