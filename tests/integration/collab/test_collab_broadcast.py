"""Broadcast modes (JACAMENO_COLLAB_BROADCAST): in on-receipt mode the other sockets see a
writer's update before it is durable, its sender's acknowledgement still waits for the commit;
a viewer's or malformed update is never broadcast; a commit that fails after the early broadcast
loses nothing acknowledged, and the clients that hold the edit bring it back to the log."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Text

from crdt import document
from domain import document as project_document
from domain import events
from eventstore import StoreUnavailableError
from harness.waiting import eventually, wait_until
from jacameno.collab import protocol, writer
from jacameno.collab.room import Room
from jacameno.collab.writer import EARLY_BATCH, EARLY_HOLD, HOLD_FACTOR, RECENT_APPENDS
from jacameno.settings.collab import AFTER_COMMIT, ON_RECEIPT, CollabConfig
from jacameno.settings.errors import SettingsError
from tests.integration.collab.support import Gate, Server, YClient


@pytest.fixture
def config() -> CollabConfig:
    return CollabConfig(unload_delay=0.2, broadcast=ON_RECEIPT)


def _gate(server: Server, project: str, **kwargs: object) -> tuple[Room, Gate]:
    """The project's live room, its store replaced by a closed Gate (appends wait)."""
    live = server.rooms.loaded(project)
    assert live is not None
    gate = Gate(server.store, **kwargs)  # type: ignore[arg-type]
    live.writer.store = gate
    return live, gate


def test_the_mode_is_read_and_checked() -> None:
    assert CollabConfig().broadcast == AFTER_COMMIT  # the default (docs/collaboration.md)
    assert not CollabConfig().early_broadcast
    env = {"COLLAB_BROADCAST": " On-Receipt "}
    assert CollabConfig.read(env.get).early_broadcast
    with pytest.raises(SettingsError, match="JACAMENO_COLLAB_BROADCAST"):
        CollabConfig.read({"COLLAB_BROADCAST": "eventually"}.get)


async def test_others_see_an_edit_before_it_commits_and_its_sender_is_acked_after(
    server: Server,
) -> None:
    _alice, _bob, project, a, b = await server.owner_and_member("editor")
    _live, gate = _gate(server, project)
    a.doc.get("lyrics", type=Text).insert(0, "early ")
    # The append is held, yet the other socket already has the edit.
    await eventually(lambda: "early" in b.content()["lyrics"])
    assert gate.calls == 1
    assert a.echoes == []  # no acknowledgement before the commit
    assert await server.events(project, events.DOC_UPDATED) == []
    gate.opened.set()
    await eventually(lambda: a.echoes == a.sent)
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == a.sent
    assert len(b.echoes) == 1  # once only: the commit sends it to nobody else
    await a.close()
    await b.close()


async def _crowded(server: Server, slow: float = 0.0) -> tuple[str, Room, Gate, YClient, YClient]:
    """A room whose first append is held (`Gate`) while its writer sends EARLY_BATCH + 2
    more updates behind it, all received by the server. With `slow`, three appends of that
    many seconds each committed first."""
    _alice, _bob, project, a, b = await server.owner_and_member("editor")
    live, gate = _gate(server, project, delay=slow)
    lyrics = a.doc.get("lyrics", type=Text)
    if slow:
        gate.opened.set()
        for _ in range(3):
            lyrics.insert(len(lyrics), "s")
            await eventually(lambda: a.echoes == a.sent)
        gate.opened.clear()
    before = gate.calls
    lyrics.insert(len(lyrics), "0")
    await eventually(lambda: gate.calls == before + 1)  # the append under way, held
    for n in range(1, EARLY_BATCH + 3):
        lyrics.insert(len(lyrics), str(n % 10))
    await eventually(lambda: len(live.writer._pending) == EARLY_BATCH + 2)
    return project, live, gate, a, b


async def _commit_all(server: Server, project: str, gate: Gate, a: YClient, b: YClient) -> None:
    """Let the held append commit: every update is acknowledged, b got each once, in order,
    and the log holds them all."""
    gate.opened.set()
    await eventually(lambda: a.echoes == a.sent)
    assert b.echoes == a.sent
    assert b.content() == a.content()
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == a.sent
    await a.close()
    await b.close()


async def test_a_crowded_room_sends_early_in_batches_and_still_before_the_commit(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While an append is under way and EARLY_BATCH writes wait behind it, further early sends
    # wait for that append's commit and go out together, still before their own commit (here
    # the commit comes before EARLY_HOLD, made long: the next test has the other way).
    monkeypatch.setattr(writer, "EARLY_HOLD", 60.0)
    project, live, gate, a, b = await _crowded(server)
    # The first, and those behind the held append until EARLY_BATCH wait there, reach b at
    # once; the last three are held by the server, not sent.
    assert len(live.writer._held) == 3
    await eventually(lambda: len(b.echoes) == EARLY_BATCH)
    assert b.echoes == a.sent[:EARLY_BATCH]
    assert a.echoes == []
    await _commit_all(server, project, gate, a, b)  # the held sends go out, then the rest commit


async def test_a_stalled_commit_holds_a_crowded_rooms_early_sends_no_longer_than_early_hold(
    server: Server,
) -> None:
    # The append under way does not commit (a disk's tail): what was held behind it goes out
    # EARLY_HOLD after the first was held, still before any of it is durable.
    project, live, gate, a, b = await _crowded(server)
    await eventually(lambda: b.echoes == a.sent)  # every one, the held ones too, in order
    assert live.writer._held == []
    assert a.echoes == []  # none acknowledged: the append is still stuck
    assert gate.calls == 1
    await _commit_all(server, project, gate, a, b)


async def test_a_commit_as_slow_as_the_rooms_others_holds_its_early_sends_until_it_lands(
    server: Server,
) -> None:
    # Near a node's capacity every append takes tens of milliseconds: one as slow as the
    # room's others is no stall, and the held sends wait for it up to HOLD_FACTOR (2) times
    # the median of the room's recent appends, instead of also going out every EARLY_HOLD
    # (which kept a room at capacity busier still: test_collab_membership's fifty editors).
    project, live, gate, a, b = await _crowded(server, slow=0.25)
    assert live.writer.early_hold() >= 2 * 0.25
    release = live.writer._hold_timer
    assert release is not None
    assert len(live.writer._held) == 3
    # Held for more than EARLY_HOLD from now, let alone from when the first was held ...
    assert release.when() - asyncio.get_running_loop().time() > EARLY_HOLD
    # ... and still no longer than the bound: they go out while the append is stuck, when it
    # is due and not before.
    await eventually(lambda: b.echoes == a.sent)
    assert len(a.echoes) == 3  # the three slow ones only
    assert min(b.echoed_at[-3:]) >= release.when()
    await _commit_all(server, project, gate, a, b)


async def test_one_stalled_append_does_not_lengthen_the_rooms_hold(server: Server) -> None:
    # The bound follows the median of the room's last appends: after a stall, the next one is
    # still bounded by EARLY_HOLD, not by the stall.
    _alice, _bob, project, a, b = await server.owner_and_member("editor")
    live, gate = _gate(server, project)
    gate.opened.set()
    lyrics = a.doc.get("lyrics", type=Text)
    for delay in (0.0, 0.0, 0.0, 1.0):
        gate.delay = delay
        lyrics.insert(len(lyrics), "x")
        await eventually(lambda: a.echoes == a.sent)
    assert live.writer.early_hold() < 0.1  # EARLY_HOLD, or twice a quick append's time
    for _ in range(RECENT_APPENDS):  # a room whose appends all became slow holds longer
        gate.delay = 0.3
        lyrics.insert(len(lyrics), "y")
        await eventually(lambda: a.echoes == a.sent)
        if live.writer.early_hold() >= HOLD_FACTOR * 0.3:
            break
    else:
        raise AssertionError(f"still {live.writer.early_hold()} s")
    await a.close()
    await b.close()


async def test_a_viewers_update_is_never_broadcast(server: Server) -> None:
    alice, vera = await server.user("alice"), await server.user("vera")
    bob = await server.user("bob")
    project = await server.project(alice, (vera, "viewer"), (bob, "editor"))
    owner, viewer, b = [await server.client(project, u) for u in (alice, vera, bob)]
    for client in (owner, viewer, b):
        await client.sync()
    viewer.doc.get("lyrics", type=Text).insert(0, "from the viewer ")
    await eventually(lambda: any(isinstance(m, protocol.Auth) for m in viewer.messages))
    # Everything the viewer's socket sent has been handled; what comes to b next is the owner's.
    owner.doc.get("lyrics", type=Text).insert(0, "owner ")
    await eventually(lambda: len(b.echoes) == 1)
    assert b.echoes == owner.sent
    assert b.content()["lyrics"] == "owner "
    for client in (owner, viewer, b):
        await client.close()


async def test_a_malformed_update_is_never_broadcast(server: Server) -> None:
    _alice, _bob, _project, a, b = await server.owner_and_member("editor")
    await a.send(protocol.encode_update(b"\x01\x01\x07not an update"))
    assert await a.wait_closed() == 4400
    b.doc.get("lyrics", type=Text).insert(0, "bob ")
    await eventually(lambda: b.echoes == b.sent)
    assert len(b.echoes) == 1  # its own echo, nothing of the malformed update
    await b.close()


async def test_an_edit_seen_before_a_failed_commit_is_logged_under_its_author(
    server: Server,
) -> None:
    alice, bob, project, a, b = await server.owner_and_member("editor")
    live, gate = _gate(server, project, fail_with=StoreUnavailableError("database down"))
    a.doc.get("lyrics", type=Text).insert(0, "seen ")
    await eventually(lambda: "seen" in b.content()["lyrics"])
    gate.opened.set()  # the commit fails: the room drops every socket
    assert await a.wait_closed() == 1013
    assert await b.wait_closed() == 1013
    assert a.echoes == []  # never acknowledged
    # Bob, who saw Alice's edit, reconnects at once; his step 2 carries her structs. The room's
    # load logs them first, as hers: what his step 2 adds is nothing.
    retry = YClient(server, project, bob.token)
    retry.doc.apply_update(b.doc.get_update())
    await retry.connect()
    await retry.sync()

    async def logged_as_bob_sees_it() -> bool:
        logged = await server.events(project, events.DOC_UPDATED)
        rebuilt = document.build(document.EMPTY_UPDATE, [e.data for e in logged])
        return project_document.read(rebuilt) == b.content()

    await wait_until(logged_as_bob_sees_it, "the log holds what Bob saw")
    [event] = await server.events(project, events.DOC_UPDATED)
    assert event.data == a.sent[0]
    assert event.metadata["user_id"] == alice.id != bob.id
    assert event.metadata["client_id"] == a.doc.client_id
    assert event.metadata["relogged"] is True
    assert server.rooms.loaded(project) is not live
    await retry.close()


async def test_the_node_logs_an_edit_seen_before_a_failed_commit_if_nobody_returns(
    server: Server,
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    _live, gate = _gate(server, project, fail_with=StoreUnavailableError("database down"))
    a.doc.get("lyrics", type=Text).insert(0, "seen ")
    await eventually(lambda: "seen" in b.content()["lyrics"])
    gate.opened.set()
    assert await a.wait_closed() == 1013
    assert await b.wait_closed() == 1013

    # No client comes back: the node retries the room's load, which logs the edit.
    async def logged() -> bool:
        return len(await server.events(project, events.DOC_UPDATED)) == 1

    await wait_until(logged, "the node logged the edit Bob saw")
    [event] = await server.events(project, events.DOC_UPDATED)
    assert (event.data, event.metadata["user_id"]) == (a.sent[0], alice.id)
    assert not server.rooms.held.holds(project)


async def test_an_edit_whose_commit_landed_before_the_failure_is_not_logged_twice(
    server: Server,
) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    _live, gate = _gate(server, project, fail_after=StoreUnavailableError("lost the answer"))
    a.doc.get("lyrics", type=Text).insert(0, "committed ")
    await eventually(lambda: "committed" in b.content()["lyrics"])
    gate.opened.set()  # the commit lands, then the room hears a failure
    assert await a.wait_closed() == 1013
    await wait_until(lambda: not server.rooms.held.holds(project), "the relog ran")
    # The relogging room is loaded from the log, which has the edit: nothing to log again.
    again = await server.client(project, alice)
    await again.sync()
    assert again.content()["lyrics"] == "committed "
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == a.sent
    await again.close()
