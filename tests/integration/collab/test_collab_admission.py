"""Admission guards: sockets per user and project (4429), a token offered as a subprotocol is
never echoed, and an open socket ends with its access token (4401) and with its user's account
(4401), also on Hocuspocus, where a fresh token renews the access in band."""

from __future__ import annotations

import json
import time

from pycrdt import Text
from websockets.asyncio.client import connect

from crdt.encoding import write_var_string, write_var_uint
from domain import events
from harness.accounts import User
from harness.waiting import eventually
from jacameno.auth.tokens import AccessTokens
from jacameno.collab import hocuspocus
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, YClient, serving
from tests.integration.collab.test_collab_hocuspocus import HocuspocusClient, _edit


async def test_one_user_has_a_bounded_number_of_sockets_per_project(settings: Settings) -> None:
    async with serving(settings, CollabConfig(unload_delay=0.2, sockets_per_user=3)) as server:
        alice, vera = await server.user("alice"), await server.user("vera")
        project = await server.project(alice, (vera, "viewer"))
        other = await server.project(vera)
        tabs = [await server.client(project, vera) for _ in range(3)]
        for tab in tabs:
            await tab.sync()
        refused = await server.client(project, vera)
        assert await refused.wait_closed() == 4429
        assert refused.close_reason == "too many connections of this user to this project"
        # Other users, and the same user's other projects, are not concerned.
        owner = await server.client(project, alice)
        elsewhere = await server.client(other, vera)
        await owner.sync()
        await elsewhere.sync()
        # Hocuspocus documents count as sockets, and are refused in band.
        multiplexed = await HocuspocusClient.open(server)
        document = await multiplexed.attach(project, vera.token)
        await eventually(lambda: document.denied is not None)
        assert document.denied == "too many connections of this user to this project"
        await tabs[0].close()
        again = await server.client(project, vera)
        await again.sync()
        assert again.close_code is None
        for client in (*tabs[1:], again, owner, elsewhere):
            await client.close()
        await multiplexed.close()


async def test_a_token_offered_as_a_subprotocol_is_never_echoed(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    url = f"{server.ws_url}/collab/{project}"
    offers = {
        ("jacameno", f"bearer.{alice.token}"): "jacameno",
        (f"bearer.{alice.token}",): None,
        (f"bearer.{alice.token}", "y-protocols"): "y-protocols",
    }
    for offered, selected in offers.items():
        async with connect(url, subprotocols=list(offered)) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == selected
            assert ws.response is not None
            assert alice.token not in str(ws.response.headers)
            await ws.recv()  # sync step 1: admitted with the offered token


def _short_token(server: Server, user: User, seconds: float) -> str:
    tokens: AccessTokens = server.app.state.services.identity.access_tokens
    return tokens.issue(user.id, now=time.time() - tokens.ttl_seconds + seconds)


async def test_a_socket_ends_when_its_access_token_expires(server: Server) -> None:
    alice, vera = await server.user("alice"), await server.user("vera")
    project = await server.project(alice, (vera, "editor"))
    owner = await server.client(project, alice)
    expiring = YClient(server, project, _short_token(server, vera, 1.5))
    await expiring.connect()
    await expiring.sync()
    assert await expiring.wait_closed(timeout=5.0) == 4401
    assert expiring.close_reason == "the access token expired"
    assert owner.close_code is None
    await eventually(lambda: server.rooms.sessions.idle)
    left = await server.events(project, events.SESSION_LEFT)
    assert [json.loads(e.data)["code"] for e in left] == [4401]
    await owner.close()


async def test_a_hocuspocus_document_is_asked_to_renew_its_token_and_may(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    ahead = server.rooms.config.token_renewal_ahead
    client = await HocuspocusClient.open(server)
    document = await client.attach(project, _short_token(server, alice, ahead + 1.0))
    await eventually(lambda: document.synced)
    # A token request before it expires; the provider answers with a fresh token.
    await eventually(lambda: document.token_requests == 1, timeout=5.0)
    renewal = write_var_uint(hocuspocus.AUTH_TOKEN) + write_var_string(alice.token)
    await client.send(project, hocuspocus.AUTH, renewal)
    live = server.rooms.loaded(project)
    assert live is not None
    [peer] = live.peers.values()
    await eventually(lambda: (peer.access.expires_at or 0) > time.time() + 600)
    # A token with less left than the renewal's lead is asked about at once; not renewed, it
    # ends the document's access.
    # (4 s left: well under the lead, and time enough for a loaded machine to sync first)
    other = await HocuspocusClient.open(server)
    short = _short_token(server, alice, 4.0)
    expiring = await other.attach(project, short)
    await eventually(lambda: expiring.synced)
    await eventually(lambda: expiring.token_requests == 1, timeout=3.0)
    # answered with the same token: not asked again (each token is asked about once)
    await other.send(
        project, hocuspocus.AUTH, write_var_uint(hocuspocus.AUTH_TOKEN) + write_var_string(short)
    )
    await eventually(lambda: expiring.denied is not None, timeout=8.0)
    assert expiring.denied == "the access token expired"
    assert expiring.token_requests == 1
    await client.update(project, _edit(document, "renewed"))
    await eventually(lambda: document.statuses[-1:] == [1] and len(document.statuses) >= 2)
    assert document.denied is None
    await client.close()
    await other.close()


async def test_a_deleted_users_sockets_are_closed(server: Server) -> None:
    alice, bob, project, owner, member = await server.owner_and_member("editor")
    hocus = await HocuspocusClient.open(server)
    document = await hocus.attach(project, bob.token)
    await eventually(lambda: document.synced)
    await server.app.state.services.identity.accounts.delete(bob.id)
    assert await member.wait_closed() == 4401
    assert member.close_reason == "the account was deleted"
    await eventually(lambda: document.denied == "the account was deleted")
    # The owner keeps editing; nothing of the deleted user is logged.
    owner.doc.get("lyrics", type=Text).insert(0, "still here")
    await eventually(lambda: len(owner.echoes) == 1)
    updates = await server.events(project, events.DOC_UPDATED)
    assert {e.metadata["user_id"] for e in updates} == {alice.id}
    assert owner.close_code is None
    await hocus.close()
    await owner.close()
