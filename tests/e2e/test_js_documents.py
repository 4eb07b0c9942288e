"""The audit's document that nobody could open, and its BigInt, with the real JavaScript clients:
an editor's five 3.5 MB updates make an 18 MB document, which a fresh y-websocket or Hocuspocus
provider then loads whole (its sync answer is larger than the 16 MiB outbound bound, and is not
taken for a slow socket); a BigInt closes its sender with 4400 and reaches neither the log nor
the other clients."""

from __future__ import annotations

import functools
import random
from typing import Any

import pytest
from pycrdt import Text

from harness.server import ServerProcess
from harness.waiting import eventually, wait_until
from tests.e2e import documents
from tests.e2e.clients import owner_and_member, python_client
from tests.e2e.conftest import JSClients
from tests.integration.collab.support import YClient

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


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (["lyrics.insert", 1, "a"], "between the two UTF-16 units"),
        (["lyrics.delete", 1, 2], "cuts a character in two"),
    ],
    ids=["insert", "delete"],
)
async def test_an_edit_that_cuts_an_emoji_closes_its_sender_4400_and_reaches_nobody(
    server: ServerProcess, js_client: JSClients, database_url: str, cut: list[Any], reason: str
) -> None:
    """Yjs counts positions in UTF-16 units, so a client can insert inside an emoji or delete
    half of one: its clients then hold lone surrogates, which yrs cannot, and a document
    rebuilt from the log showed other lyrics ("😀a😀" against "\\ufffda\\ufffd😀")."""
    alice, _bob, project, owner, sender = await owner_and_member(server, js_client, "bob", "editor")
    await owner.edit(["lyrics.insert", 0, "😀😀"])
    await owner.wait_settled()

    async def sender_has_them() -> bool:
        return bool((await sender.state()).json["lyrics"] == "😀😀")

    await wait_until(sender_has_them, "the sender receives the emoji")
    await sender.edit(cut)
    closed = await sender.wait_event(lambda e: e["event"] == "closed")
    assert closed["code"] == 4400
    assert reason in closed["reason"]

    await owner.edit(["lyrics.append", "!"])
    await owner.wait_settled()
    shown = documents.from_json((await owner.state()).json)
    assert shown["lyrics"] == "😀😀!"
    logged = await documents.logged_updates(database_url, project)
    assert {e["metadata"]["user_id"] for e in logged} == {alice.id}
    assert documents.from_doc(documents.build(e["data"] for e in logged)) == shown


async def test_whatever_a_yjs_client_types_among_emoji_the_log_agrees_or_it_is_refused(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    """Random inserts and deletions by a Yjs client at any UTF-16 position of lyrics full of
    emoji: the room refuses exactly those that cut an emoji in two (each refusal checked
    against the text the client saw), and after every step a second client and a document
    rebuilt from the log show the same lyrics."""
    _alice, bob, project, observer, editor = await owner_and_member(
        server, js_client, "bob", "editor"
    )
    await observer.edit(["lyrics.insert", 0, "ab😀c😀😀é"])
    await observer.wait_settled()
    draw = random.Random(20261208)
    refused = accepted = 0
    for step in range(40):
        text = (await observer.state()).json["lyrics"]
        units = len(text.encode("utf-16-le")) // 2
        at = draw.randint(0, units)
        if draw.random() < 0.5 or units == 0:
            op: list[Any] = ["lyrics.insert", at, draw.choice(["x", "😀", "é", "y😀"])]
            cut = _inside(text, at)
        else:
            at = min(at, units - 1)
            length = draw.randint(1, min(3, units - at))
            op = ["lyrics.delete", at, length]
            cut = _inside(text, at) or _inside(text, at + length)
        await editor.edit(op)
        if cut:
            closed = await editor.wait_event(lambda e: e["event"] == "closed")
            assert closed["code"] == 4400, (step, op, text)
            refused += 1
            editor = await js_client(f"editor-{step}")  # a fresh one: the old holds the cut
            await editor.connect(server.ws_url, project, bob.token)
            await editor.wait_synced()
        else:
            await editor.wait_settled()
            accepted += 1
        logged = await documents.logged_updates(database_url, project)
        lyrics = documents.from_doc(documents.build(e["data"] for e in logged))["lyrics"]

        async def observer_agrees(lyrics: str = lyrics) -> bool:
            return bool((await observer.state()).json["lyrics"] == lyrics)

        await wait_until(
            observer_agrees, f"step {step}: {op} on {text!r}: the log shows {lyrics!r}"
        )
        assert "\ufffd" not in lyrics
    assert refused >= 3, refused  # the draw meets both
    assert accepted >= 10, accepted


def _answered(client: YClient) -> bool:
    """Whether the room acknowledged everything `client` sent, or closed it."""
    return client.close_code is not None or set(client.sent) <= set(client.echoes)


def _inside(text: str, at: int) -> bool:
    """Whether UTF-16 position `at` of `text` falls between the two units of one character."""
    units = text.encode("utf-16-le", "surrogatepass")
    if not 0 < at < len(units) // 2:
        return False
    before = int.from_bytes(units[2 * at - 2 : 2 * at], "little")
    return 0xD800 <= before <= 0xDBFF


async def test_whatever_pycrdt_types_at_any_byte_the_log_and_yjs_agree(
    server: ServerProcess, js_client: JSClients, database_url: str
) -> None:
    """pycrdt counts a text's positions in UTF-8 bytes, so a Python client can type inside any
    character of several bytes, before or after a Yjs client's other edits. Whatever the room
    lets through, a Yjs client and a document rebuilt from the log show the same document
    after every step (a refused Python client is replaced by a fresh one)."""
    _alice, bob, project, yjs, _editor = await owner_and_member(server, js_client, "bob", "editor")
    python = await python_client(server, project, bob.token)
    draw = random.Random(8122026)
    refused = 0
    for step in range(40):
        who = draw.random()
        if who < 0.5:
            lyrics = python.doc.get("lyrics", type=Text)
            at = draw.randint(0, len(str(lyrics).encode()))  # any byte, inside a character too
            lyrics.insert(at, draw.choice(["a", "é", "😀", "\x80b"]))
            await eventually(functools.partial(_answered, python))
        elif who < 0.8:
            text = (await yjs.state()).json["lyrics"]
            at = draw.randint(0, len(text))  # whole characters: positions in code points...
            units = len(text[:at].encode("utf-16-le")) // 2  # ...given in UTF-16 units
            await yjs.edit(["lyrics.insert", units, draw.choice(["0", "\x80", "😀", "ü "])])
        else:
            await yjs.edit(["meta.set", "title", f"take {step}"])
        await yjs.wait_settled()
        if python.close_code is not None:
            assert python.close_code == 4400, python.close_reason
            refused += 1
            await python.close()
            python = await python_client(server, project, bob.token)
        logged = await documents.logged_updates(database_url, project)
        rebuilt = documents.from_doc(documents.build(e["data"] for e in logged))

        async def yjs_agrees(rebuilt: dict[str, Any] = rebuilt) -> bool:
            return bool(documents.from_json((await yjs.state()).json) == rebuilt)

        await wait_until(yjs_agrees, f"step {step}: the log shows {rebuilt!r}")
    assert refused >= 3, refused  # the draw types inside characters
