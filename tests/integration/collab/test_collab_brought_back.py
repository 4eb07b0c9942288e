"""On-receipt mode after a node's death: an edit the dead node broadcast but never logged is logged
under the user who made it even when another client brings it back (the node's ledger,
jacameno.collab.ledger); nothing else moves to another author on a client's word."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt import document
from domain import document as project_document
from domain import events
from eventstore import RecordedEvent, StoreUnavailableError
from harness.waiting import eventually, wait_until
from jacameno.collab import protocol
from jacameno.collab.ledger import EarlyLedger
from jacameno.settings import Settings
from jacameno.settings.collab import AFTER_COMMIT, ON_RECEIPT, CollabConfig
from tests.integration.collab.support import Gate, Server, YClient, serving

CONFIG = CollabConfig(unload_delay=0.2, broadcast=ON_RECEIPT)


def _ledger(server: Server) -> EarlyLedger:
    ledger = server.rooms.ledger
    assert ledger is not None
    return ledger


async def _dies_holding(server: Server, project: str, a: YClient, b: YClient) -> Gate:
    """`a` types "lost ", which `b` is sent early but which never commits on `server`; both
    clients then lose their sockets, as to a node that died. The held room's gate is returned
    (`_bury` it once done)."""
    gate = _hold(server, project)
    acknowledged = len(a.echoes)
    _type(a, "lost ")
    await eventually(lambda: "lost" in b.content()["lyrics"])
    assert len(a.echoes) == acknowledged  # never acknowledged
    await _ledger(server).flushed()
    await a.close()
    await b.close()
    return gate


def _hold(server: Server, project: str) -> Gate:
    """The project's room on `server` never commits again (its node is as good as dead)."""
    live = server.rooms.loaded(project)
    assert live is not None
    gate = Gate(server.store)
    live.writer.store = gate
    return gate


def _bury(gate: Gate) -> None:
    """Let the held room fail at last (after the test's checks): it logs nothing more."""
    gate.fail_with = StoreUnavailableError("the node is dead")
    gate.opened.set()


async def _logged(server: Server, project: str, count: int) -> list[RecordedEvent]:
    async def enough() -> bool:
        return len(await server.events(project, events.DOC_UPDATED)) >= count

    await wait_until(enough, f"{count} updates logged")
    return await server.events(project, events.DOC_UPDATED)


async def _brought_back(server: Server, project: str, token: str | None, doc: Doc[Any]) -> YClient:
    """A client of `token`'s user that holds what `doc` holds, connected and synced to
    `server` (its sync step 2 brings back whatever the log lacks)."""
    client = YClient(server, project, token)
    client.doc.apply_update(doc.get_update())
    await client.connect()
    await client.sync()
    return client


def _type(client: YClient, text: str) -> None:
    client.doc.get("lyrics", type=Text).insert(0, text)


async def test_the_config_records_only_on_receipt(settings: Settings) -> None:
    after_commit = CollabConfig(unload_delay=0.2, broadcast=AFTER_COMMIT)
    async with serving(settings, after_commit) as server:
        assert server.rooms.ledger is None  # after-commit: nothing is sent before it is durable


@pytest.mark.parametrize("open_there", [False, True], ids=["loaded-after", "open-before"])
async def test_an_edit_a_dead_node_sent_early_is_logged_under_its_author_whoever_brings_it_back(
    settings: Settings, open_there: bool
) -> None:
    """Bob comes back first, on another node (or the same one restarted): his sync step 2
    carries Alice's lost edit. The project's room there loads as he joins, or (`open_there`)
    was open all along with a client of its own."""
    async with serving(settings, CONFIG) as one, serving(settings, CONFIG) as other:
        alice, bob, project, a, b = await one.owner_and_member("editor")
        _type(a, "first ")
        await eventually(lambda: a.echoes == a.sent)
        watching = None
        if open_there:
            watching = await other.client(project, alice)
            await watching.sync()
            assert watching.content()["lyrics"] == "first "
        gate = await _dies_holding(one, project, a, b)
        retry = await _brought_back(other, project, bob.token, b.doc)
        first, brought = await _logged(other, project, 2)
        assert first.data == a.sent[0]
        assert brought.metadata["user_id"] == alice.id
        assert brought.metadata["brought_by"] == bob.id
        assert brought.metadata["client_id"] == a.doc.client_id
        rebuilt = document.build(document.EMPTY_UPDATE, [first.data, brought.data])
        assert project_document.read(rebuilt)["lyrics"] == "lost first "
        # Alice's own resend then adds nothing; Bob's own typing is his.
        again = await _brought_back(other, project, alice.token, a.doc)
        _type(retry, "bob ")
        *_, mine = await _logged(other, project, 3)
        assert mine.metadata["user_id"] == bob.id
        assert "brought_by" not in mine.metadata
        assert len(await other.events(project, events.DOC_UPDATED)) == 3
        for client in (retry, again, *([watching] if watching else [])):
            await client.close()
        _bury(gate)


def _forge_past_the_record(doc: Doc[Any], author: int) -> None:
    """Structs of the author's client id at clocks after those it was recorded sending."""
    forged: Doc[Any] = Doc(client_id=author)
    forged.apply_update(doc.get_update())
    forged.get("lyrics", type=Text).insert(0, "forged ")
    doc.apply_update(forged.get_update(doc.get_state()))


async def test_a_forgery_under_the_authors_client_id_stays_the_bringers(
    settings: Settings,
) -> None:
    async with serving(settings, CONFIG) as one:
        _alice, bob, project, a, b = await one.owner_and_member("editor")
        _type(a, "first ")
        await eventually(lambda: a.echoes == a.sent)
        gate = await _dies_holding(one, project, a, b)
        async with serving(settings, CONFIG) as other:
            held: Doc[Any] = Doc()
            held.apply_update(b.doc.get_update())
            _forge_past_the_record(held, a.doc.client_id)
            retry = await _brought_back(other, project, bob.token, held)
            *_, brought = await _logged(other, project, 2)
            # Alice's lost edit, with clocks of her client nobody was recorded sending: Bob's,
            # whole, as any update is its sender's.
            assert brought.metadata["user_id"] == bob.id
            assert "brought_by" not in brought.metadata
            assert len(await other.events(project, events.DOC_UPDATED)) == 2
            await retry.close()
        _bury(gate)


async def test_a_lost_edit_brought_back_with_the_bringers_own_is_cut_by_author(
    settings: Settings,
) -> None:
    async with serving(settings, CONFIG) as one:
        alice, bob, project, a, b = await one.owner_and_member("editor")
        gate = await _dies_holding(one, project, a, b)
        async with serving(settings, CONFIG) as other:
            # Bob had typed too, offline: his sync step 2 holds both.
            held: Doc[Any] = Doc(client_id=b.doc.client_id)
            held.apply_update(b.doc.get_update())
            held.get("lyrics", type=Text).insert(0, "mine ")
            retry = await _brought_back(other, project, bob.token, held)
            theirs, mine = await _logged(other, project, 2)
            assert (theirs.metadata["user_id"], theirs.metadata["brought_by"]) == (alice.id, bob.id)
            assert theirs.metadata["client_id"] == a.doc.client_id
            assert (mine.metadata["user_id"], mine.metadata["client_id"]) == (
                bob.id,
                held.client_id,
            )
            assert "brought_by" not in mine.metadata
            rebuilt = document.build(document.EMPTY_UPDATE, [theirs.data, mine.data])
            assert project_document.read(rebuilt)["lyrics"] == "mine lost "
            # Bob's socket is acknowledged once, by the last part, for the one update it sent.
            await eventually(lambda: len(retry.echoes) >= 1)
            assert retry.echoes == [mine.data]
            await retry.close()
        _bury(gate)


async def test_a_viewer_brings_nothing_back(settings: Settings) -> None:
    async with serving(settings, CONFIG) as one:
        alice, bob, vera = [await one.user(name) for name in ("alice", "bob", "vera")]
        project = await one.project(alice, (bob, "editor"), (vera, "viewer"))
        a, b = await one.client(project, alice), await one.client(project, bob)
        await a.sync()
        await b.sync()
        gate = await _dies_holding(one, project, a, b)
        async with serving(settings, CONFIG) as other:
            viewer = YClient(other, project, vera.token)
            viewer.doc.apply_update(b.doc.get_update())
            await viewer.connect()
            # Its sync step 2 is refused as any viewer's update is: nothing is logged.
            await eventually(lambda: any(isinstance(m, protocol.Auth) for m in viewer.messages))
            assert await other.events(project, events.DOC_UPDATED) == []
            await viewer.close()
        _bury(gate)


async def test_only_an_edit_sent_early_to_another_users_socket_is_recorded(
    settings: Settings,
) -> None:
    """The ledger matters only when another user's client may bring the edit back: an edit
    sent early to nobody, or only to its author's other tabs, records nothing (its author is
    whoever brings it back anyway)."""
    async with serving(settings, CONFIG) as one:
        alice, bob, project, a, b = await one.owner_and_member("editor")
        await b.close()
        await eventually(lambda: len(one.rooms.loaded(project).peers) == 1)  # type: ignore[union-attr]
        _type(a, "alone ")
        await eventually(lambda: a.echoes == a.sent)
        tab = await one.client(project, alice)
        await tab.sync()
        _type(a, "two tabs ")
        await eventually(lambda: "two tabs" in tab.content()["lyrics"])
        await eventually(lambda: a.echoes == a.sent)
        await _ledger(one).flushed()
        assert await _ledger(one).recall(project) == []
        watching = await one.client(project, bob)
        await watching.sync()
        _type(a, "seen ")
        await eventually(lambda: "seen" in watching.content()["lyrics"])
        await _ledger(one).flushed()
        recorded = await _ledger(one).recall(project)
        assert [(s.client, s.user_id) for s in recorded] == [(a.doc.client_id, alice.id)]


async def test_a_newcomers_first_edit_is_not_held_up_by_records_that_keep_coming(
    settings: Settings,
) -> None:
    """A socket's first edit waits for the ledger's recall; while another user keeps typing,
    the ledger keeps writing records (and, on Postgres, holds its writer's connection): the
    recall must not wait for that."""
    async with serving(settings, CONFIG) as one:
        # Alice's edits reach another user's socket (Bob's `_b`): each is recorded.
        _, bob, project, a, _b = await one.owner_and_member("editor")
        typing = True

        def echoed(update: bytes) -> Callable[[], bool]:
            return lambda: update in a.echoes

        async def type_on() -> None:  # each edit once the last is acknowledged, until told
            while typing:
                _type(a, "a")
                await eventually(echoed(a.sent[-1]))

        async def recorded() -> bool:
            return bool(await _ledger(one).recall(project))

        typist = asyncio.create_task(type_on())
        try:
            await wait_until(recorded, "Alice's edits recorded")
            late = await one.client(project, bob)
            await late.sync()
            started = time.monotonic()
            _type(late, "bob ")
            await eventually(lambda: "bob" in a.content()["lyrics"], timeout=5)
            assert time.monotonic() - started < 0.5
        finally:
            typing = False
            await typist
