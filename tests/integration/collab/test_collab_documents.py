"""What a document may become and how it is served (docs/security.md, "Documents and sync"): a
document larger than a socket's outbound bound is served to every newcomer, a socket that stops
reading is still closed with 1013, asking for the whole document again and again closes 4429,
types nested too deep close 4400 (also after the room reloads), and old snapshots are pruned."""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest
from pycrdt import Array, Map, Text
from websockets.exceptions import ConnectionClosedError

from crdt.update import check_update
from domain import events
from harness.waiting import eventually
from jacameno.collab import depths, protocol
from jacameno.collab.errors import MalformedMessage
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Server, YClient, serving

KIB = 1024
PIECE = 60 * KIB  # one update; ten make a document five times the outbound bound


@pytest.fixture
def config() -> CollabConfig:
    return CollabConfig(
        max_message_bytes=64 * KIB,
        outbound_bytes=128 * KIB,
        max_document_bytes=2048 * KIB,
        large_syncs=4,
        large_sync_bytes=4 * KIB,
        max_type_depth=8,
        unload_delay=0.05,
    )


async def _large_document(server: Server, pieces: int = 10) -> tuple[Any, str, YClient]:
    alice = await server.user("alice")
    project = await server.project(alice)
    writer = await server.client(project, alice)
    await writer.sync()
    lyrics = writer.doc.get("lyrics", type=Text)
    for i in range(pieces):
        lyrics.insert(len(lyrics), chr(ord("a") + i) * PIECE)
        await eventually(lambda n=i: len(writer.echoes) > n)  # type: ignore[misc]
    return alice, project, writer


@pytest.mark.parametrize("asgi_sends", [False, True], ids=["frames", "asgi"])
async def test_a_document_larger_than_the_outbound_bound_is_served(
    settings: Settings, config: CollabConfig, asgi_sends: bool
) -> None:
    async with serving(settings, config, asgi_sends=asgi_sends) as server:
        alice, project, writer = await _large_document(server)
        newcomers = [await server.client(project, alice) for _ in range(3)]
        for newcomer in newcomers:
            await newcomer.sync()
        for newcomer in newcomers:
            assert newcomer.close_code is None
            assert newcomer.content() == writer.content()
            assert len(newcomer.content()["lyrics"]) == 10 * PIECE
            await newcomer.close()
        await writer.close()


@pytest.mark.parametrize("asgi_sends", [False, True], ids=["frames", "asgi"])
async def test_a_socket_that_stops_reading_after_a_large_sync_is_closed_with_1013(
    settings: Settings, config: CollabConfig, asgi_sends: bool
) -> None:
    async with serving(settings, config, asgi_sends=asgi_sends) as server:
        alice, project, writer = await _large_document(server)
        server.limit_send_buffer(16 * KIB)
        slow = YClient(
            server, project, alice.token, max_queue=1, read=False, receive_buffer=16 * KIB
        )
        await slow.connect()
        await slow.send(protocol.encode_sync_step1(b"\x00"))  # the whole document, unread
        lyrics = writer.doc.get("lyrics", type=Text)
        for i in range(8):  # 480 KiB more than the slow socket reads: over its 128 KiB bound
            lyrics.insert(0, f"{i}" * PIECE)
            await eventually(lambda n=i: len(writer.echoes) > 10 + n)  # type: ignore[misc]
        assert slow.ws is not None
        with pytest.raises(ConnectionClosedError):
            async for _ in slow.ws:
                pass
        assert slow.ws.close_code == 1013
        assert writer.close_code is None
        await writer.close()


async def test_asking_for_the_whole_document_again_and_again_closes_4429(server: Server) -> None:
    alice, project, writer = await _large_document(server, pieces=1)
    asker = await server.client(project, alice)

    def answers() -> int:
        return sum(isinstance(m, protocol.SyncStep2) for m in asker.messages)

    for i in range(4):  # the budget
        await asker.send(protocol.encode_sync_step1(b"\x00"))
        await eventually(lambda n=i: answers() > n)  # type: ignore[misc]
    await asker.send(protocol.encode_sync_step1(b"\x00"))
    assert await asker.wait_closed() == 4429
    assert answers() == 4
    writer.doc.get("meta", type=Map)["bpm"] = 99
    await eventually(lambda: len(writer.echoes) == 2)
    assert writer.close_code is None
    await writer.close()


async def test_resyncs_of_a_client_that_holds_the_document_stay_within_the_budget(
    server: Server,
) -> None:
    alice, project, writer = await _large_document(server, pieces=1)
    resyncing = await server.client(project, alice)
    await resyncing.sync()
    for _ in range(30):  # a provider's periodic resync, or a Hocuspocus re-authentication
        await resyncing.sync()
    writer.doc.get("meta", type=Map)["bpm"] = 99
    await eventually(lambda: resyncing.content() == writer.content())
    assert resyncing.close_code is None
    await resyncing.close()
    await writer.close()


def _nest(client: YClient, levels: int, under: Map[Any] | None = None) -> Map[Any]:
    inner: Map[Any] = under if under is not None else client.doc.get("meta", type=Map)
    for _ in range(levels):
        child: Map[Any] = Map()
        inner["deeper"] = child
        inner = child
    return inner


@pytest.mark.parametrize("emoji", [0, 40], ids=["alone", "after-emoji"])
async def test_types_nested_too_deep_close_4400_and_nothing_is_stored(
    server: Server, emoji: int
) -> None:
    """Also after emoji in the same update: an emoji is four UTF-8 bytes but two clocks, and
    the check must count clocks as yrs does, or the chain reads its depths off the text and
    passes whatever its depth."""
    project, bystander, nester = await server.two_synced()
    with nester.doc.transaction():
        if emoji:
            nester.doc.get("lyrics", type=Text).insert(0, "\U0001f600" * emoji)
        _nest(nester, 8)  # the deepest at depth 9
    assert await nester.wait_closed() == 4400
    assert "nested deeper than 8" in nester.close_reason
    await server.assert_unharmed(project, bystander)


async def test_an_item_typed_before_itself_closes_4400_and_is_not_stored(server: Server) -> None:
    """pycrdt counts a text's positions in UTF-8 bytes: typing inside a character writes an item
    that names itself, which every other document would keep pending while its writer shows
    it."""
    project, bystander, typist = await server.two_synced()
    lyrics = typist.doc.get("lyrics", type=Text)
    lyrics.insert(0, "-1 00\x80\n")  # U+0080: two bytes in UTF-8
    await eventually(lambda: len(typist.echoes) == 1)
    lyrics.insert(6, "a ")  # between them
    assert await typist.wait_closed() == 4400
    assert "typed before itself" in typist.close_reason
    bystander.doc.get("lyrics", type=Text).insert(0, "still here")  # the room goes on
    await eventually(lambda: len(bystander.echoes) == 2)  # the typist's first update, its own
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == [typist.sent[0], *bystander.sent]
    await bystander.close()


async def test_an_item_typed_between_items_of_two_types_closes_4400_and_is_not_stored(
    server: Server,
) -> None:
    """pycrdt typing inside a two-byte character another client typed, right before that
    client's next item in another type (here its notes): Yjs and yrs integrate it differently,
    so the room's read models and its clients would disagree for good."""
    project, other, typist = await server.two_synced()
    other.doc.get("lyrics", type=Text).insert(0, "00\x80 ")  # U+0080: two bytes in UTF-8
    other.doc.get("notes", type=Text).insert(0, "n")
    await eventually(lambda: len(other.echoes) == 2)
    await eventually(lambda: str(typist.doc.get("notes", type=Text)) == "n")
    typist.doc.get("lyrics", type=Text).insert(3, "a\n")  # inside U+0080
    assert await typist.wait_closed() == 4400
    assert "between items of two different types" in typist.close_reason
    other.doc.get("lyrics", type=Text).insert(0, "still here")  # the room goes on
    await eventually(lambda: len(other.echoes) == 3)
    logged = await server.events(project, events.DOC_UPDATED)
    assert [e.data for e in logged] == other.sent
    await other.close()


async def test_the_depth_limit_holds_across_updates_and_room_reloads(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    first = await server.client(project, alice)
    await first.sync()
    with first.doc.transaction():
        _nest(first, 7)  # depth 8: allowed
    await eventually(lambda: len(first.echoes) == 1)
    await first.close()
    await eventually(lambda: project not in server.rooms)

    second = await server.client(project, alice)
    await second.sync()
    deepest: Any = second.doc.get("meta", type=Map)
    for _ in range(7):
        deepest = deepest["deeper"]
    deepest["value"] = 1  # not a type: allowed at any depth
    await eventually(lambda: len(second.echoes) == 1)
    _nest(second, 1, under=deepest)
    assert await second.wait_closed() == 4400
    assert len(await server.events(project, events.DOC_UPDATED)) == 2


async def test_a_large_document_opens_before_its_nesting_and_the_depth_limit_still_holds(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every document counts as large here, and the second load's nesting waits for a gate: the
    # room serves before it is built; an update without a type is applied meanwhile (and its
    # items recorded once the nesting is ready: a type inserted beside them is placed by them);
    # an update holding a type waits for the nesting, and one too deep is still refused.
    monkeypatch.setattr(depths, "BACKGROUND_BYTES", 0)
    gate = asyncio.Event()
    gate.set()
    build = depths.build

    async def gated(state: bytes) -> Any:
        await gate.wait()
        return await build(state)

    monkeypatch.setattr(depths, "build", gated)
    alice = await server.user("alice")
    project = await server.project(alice)
    first = await server.client(project, alice)
    await first.sync()
    with first.doc.transaction():
        _nest(first, 5)["list"] = Array()  # the list at depth 7
    await eventually(lambda: len(first.echoes) == 1)
    await first.close()
    await eventually(lambda: project not in server.rooms)

    gate.clear()
    second = await server.client(project, alice)
    await second.sync()  # served while the nesting waits at the gate
    deepest: Any = second.doc.get("meta", type=Map)
    for _ in range(5):
        deepest = deepest["deeper"]
    listed: Array[Any] = deepest["list"]
    listed.append(1)  # no type: applied and logged before the nesting is built
    await eventually(lambda: len(second.echoes) == 1)
    listed.append(Map())  # beside the 1: at depth 8, allowed once the nesting knows the 1
    gate.set()
    await eventually(lambda: len(second.echoes) == 2)
    listed[1]["deeper"] = Map()  # depth 9
    assert await second.wait_closed() == 4400
    assert "nested deeper than 8" in second.close_reason
    assert len(await server.events(project, events.DOC_UPDATED)) == 3


async def test_a_nesting_whose_process_dies_fails_the_room_and_the_next_join_loads_it(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(depths, "BACKGROUND_BYTES", 0)
    build = depths.build

    synced = asyncio.Event()

    async def dying(state: bytes) -> Any:
        await synced.wait()
        raise BrokenProcessPool("the nesting's process died")

    monkeypatch.setattr(depths, "build", dying)
    alice = await server.user("alice")
    project = await server.project(alice)
    first = await server.client(project, alice)
    await first.sync()
    synced.set()
    assert await first.wait_closed() == 1013
    monkeypatch.setattr(depths, "build", build)
    second = await server.client(project, alice)
    await second.sync()
    with second.doc.transaction():
        _nest(second, 2)
    await eventually(lambda: len(second.echoes) == 1)
    await second.close()


async def test_a_bigint_logged_before_they_were_refused_does_not_stop_the_room(
    server: Server,
) -> None:
    """An older server logged BigInts: the room still loads, and nesting is still checked."""
    alice = await server.user("alice")
    project = await server.project(alice)
    doc: Any = YClient(server, project, alice.token).doc
    doc.get("meta", type=Map)["n"] = 2**60 + 3  # pycrdt writes this int as a BigInt
    old = doc.get_update()
    with pytest.raises(MalformedMessage, match="BigInt"):
        check_update(old)
    await server.store.append(
        events.stream_name(project),
        [
            events.doc_updated(
                old,
                check_update(old, logged=True),
                user_id=alice.id,
                connection_id="old",
                node="old",
            )
        ],
    )
    client = await server.client(project, alice)
    await client.sync()
    assert client.doc.get("meta", type=Map)["n"] == 2**60 + 3
    with client.doc.transaction():
        _nest(client, 2)
    await eventually(lambda: len(client.echoes) == 1)
    with client.doc.transaction():
        _nest(client, 9)
    assert await client.wait_closed() == 4400


async def test_a_project_keeps_only_its_latest_snapshots(settings: Settings) -> None:
    config = CollabConfig(snapshot_every_updates=2, snapshot_jitter=0.0, unload_delay=0.05)
    async with serving(dataclasses.replace(settings, snapshots_per_stream=2), config) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        await client.sync()
        room = server.rooms.loaded(project)
        assert room is not None
        for i in range(8):
            client.doc.get("meta", type=Map)["bpm"] = i
            await eventually(lambda n=i: len(client.echoes) > n)  # type: ignore[misc]
            # Every second commit makes a snapshot due; wait for it so that each is its own.
            await eventually(lambda n=i: room.snapshots >= (n + 1) // 2)  # type: ignore[misc]
        # Once the room has unloaded, no snapshot is being saved (nor pruned) while we read.
        await client.close()
        await eventually(lambda: server.rooms.loaded(project) is None)
        stream = events.stream_name(project)
        latest = await server.store.load_snapshot(stream)
        assert latest is not None
        older = await server.store.load_snapshot(stream, max_version=latest.version - 1)
        assert older is not None
        assert await server.store.load_snapshot(stream, max_version=older.version - 1) is None


async def test_a_snapshot_that_fell_due_while_one_was_saved_is_taken_without_another_edit(
    settings: Settings,
) -> None:
    config = CollabConfig(snapshot_every_updates=2, snapshot_jitter=0.0)
    async with serving(settings, config) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        await client.sync()
        room = server.rooms.loaded(project)
        assert room is not None
        # The store's first snapshot save is held (a slow disk) while six more edits commit.
        store = server.store
        save = store.save_snapshot
        release = asyncio.Event()
        saving = asyncio.Event()

        async def slow_save(*args: Any, **kwargs: Any) -> None:
            if not release.is_set():
                saving.set()
                await release.wait()
            await save(*args, **kwargs)

        store.save_snapshot = slow_save  # type: ignore[method-assign]
        for i in range(8):
            client.doc.get("meta", type=Map)["bpm"] = i
            await eventually(lambda n=i: len(client.echoes) > n)  # type: ignore[misc]
        assert saving.is_set()
        assert room.snapshots == 0
        release.set()
        # The room is quiet now; the six updates committed meanwhile are folded all the same.
        await eventually(lambda: room.snapshots == 2)
        latest = await server.store.load_snapshot(events.stream_name(project))
        assert latest is not None
        assert latest.version == room.version
