"""Session bookkeeping never takes a room down: a Hocuspocus `sessionAwareness` name (with NUL)
is logged in a safe form, a session event the log refuses or fails is a warning and nothing
more, every logged `session.joined` gets its `session.left` (also when the room fails), and
reconnecting in a loop logs a bounded number of sessions."""

from __future__ import annotations

import json

from pycrdt import Text

from domain import events
from eventstore import InvalidEventError, RecordedEvent, StoreUnavailableError
from harness.waiting import eventually
from jacameno.bootstrap.core import open_event_store
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from tests.integration.collab.support import Gate, Server, YClient, serving
from tests.integration.collab.test_collab_hocuspocus import HocuspocusClient, _edit


async def _sessions(server: Server, project: str) -> tuple[list[str], list[str]]:
    """The connection ids of the logged joins and leaves, once the session log is idle."""
    await eventually(lambda: server.rooms.sessions.idle)
    found = await server.events(project)
    joined = [str(e.metadata["connection_id"]) for e in found if e.type == events.SESSION_JOINED]
    left = [str(e.metadata["connection_id"]) for e in found if e.type == events.SESSION_LEFT]
    return joined, left


def _clean(event: RecordedEvent) -> bool:
    """No NUL and nothing long in what a session event or an update's metadata says."""
    data = event.data.decode() if event.type != events.DOC_UPDATED else ""
    text = data + json.dumps(event.metadata)
    return "\x00" not in text and "\\u0000" not in text and len(text) < 1000


async def _typist(server: Server, project: str, writer: YClient, n: int) -> None:
    writer.doc.get("lyrics", type=Text).insert(0, f"{n} ")
    await eventually(lambda: len(writer.echoes) == n or writer.close_code is not None)


async def test_session_aware_hocuspocus_names_never_drop_the_room(server: Server) -> None:
    alice, vera = await server.user("alice"), await server.user("vera")
    project = await server.project(alice, (vera, "viewer"))
    editor = await server.client(project, alice)
    await editor.sync()
    await _typist(server, project, editor, 1)
    # Any suffix within max_document_name_bytes (256).
    names = [f"{project}\0{suffix}" for suffix in ("k3j9x2", "a\0b\x01c", "é" * 100, "")]
    viewers = []
    for round_, name in enumerate(names * 2):
        viewer = await HocuspocusClient.open(server)
        document = await viewer.attach(name, vera.token)
        await eventually(lambda: document.synced)  # noqa: B023
        viewers.append(viewer)
        await _typist(server, project, editor, round_ + 2)
    # A session-aware editor's updates are logged too.
    writer = await HocuspocusClient.open(server)
    mine = await writer.attach(f"{project}\0sess-1", alice.token)
    await eventually(lambda: mine.synced)
    await writer.update(f"{project}\0sess-1", _edit(mine, "hocus "))
    await eventually(lambda: mine.statuses[-1:] == [1] and len(mine.statuses) == 2)
    assert editor.close_code is None
    for viewer in [*viewers, writer]:
        await viewer.close()
    await editor.close()
    await eventually(lambda: project not in server.rooms)
    joined, left = await _sessions(server, project)
    assert len(joined) == len(viewers) + 2
    assert sorted(joined) == sorted(left)
    assert all(_clean(e) for e in await server.events(project))
    logged = await server.events(project, events.DOC_UPDATED)
    assert len(logged) == len(viewers) + 2


async def test_a_session_event_the_log_refuses_or_fails_spares_the_room(server: Server) -> None:
    alice, _bob, project, editor, other = await server.owner_and_member("editor")
    await eventually(lambda: server.rooms.sessions.idle)
    sessions = server.rooms.sessions
    for error in (InvalidEventError("refused"), StoreUnavailableError("down")):
        gate = Gate(server.store, fail_with=error)
        gate.opened.set()
        sessions.store = gate
        late = await server.client(project, alice)
        await late.sync()
        await eventually(lambda: sessions.idle)
        await late.close()
        await _typist(server, project, editor, len(editor.echoes) + 1)
        assert (editor.close_code, other.close_code) == (None, None)
    sessions.store = server.store
    await editor.close()
    await other.close()
    joined, left = await _sessions(server, project)
    assert sorted(joined) == sorted(left)  # the two unlogged joins got no leave either
    assert len(joined) == 2


async def test_every_logged_join_gets_its_leave_when_the_room_fails(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    c = await server.client(project, alice)
    await c.sync()
    live = server.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: not live.busy and server.rooms.sessions.idle)
    gate = Gate(server.store, fail_with=StoreUnavailableError("database down"))
    gate.opened.set()
    live.writer.store = gate
    a.doc.get("lyrics", type=Text).insert(0, "lost")
    assert [await x.wait_closed() for x in (a, b, c)] == [1013, 1013, 1013]
    joined, left = await _sessions(server, project)
    assert len(joined) == 3
    assert sorted(joined) == sorted(left)
    codes = [json.loads(e.data)["code"] for e in await server.events(project, events.SESSION_LEFT)]
    assert codes == [1013, 1013, 1013]


async def test_an_update_the_log_refuses_is_not_taken_for_an_unavailable_log(
    server: Server,
) -> None:
    _alice, _bob, project, a, b = await server.owner_and_member("editor")
    live = server.rooms.loaded(project)
    assert live is not None
    await eventually(lambda: not live.busy)
    gate = Gate(server.store, fail_with=InvalidEventError("refused"))
    gate.opened.set()
    live.writer.store = gate
    a.doc.get("lyrics", type=Text).insert(0, "refused")
    assert await a.wait_closed() == 1011
    assert await b.wait_closed() == 1011
    assert a.close_reason == "the log refused an update"


async def test_reconnecting_in_a_loop_logs_a_bounded_number_of_sessions(
    settings: Settings,
) -> None:
    async with serving(settings, CollabConfig(sessions_logged_per_minute=5)) as server:
        alice, vera = await server.user("alice"), await server.user("vera")
        project = await server.project(alice, (vera, "viewer"))
        editor = await server.client(project, alice)
        await editor.sync()
        for _ in range(40):
            viewer = await server.client(project, vera)
            await viewer.sync()
            await viewer.close()
        # Another user's sessions have their own allowance.
        await _typist(server, project, editor, 1)
        await editor.close()
        joined, left = await _sessions(server, project)
        assert sorted(joined) == sorted(left)
        logged = await server.events(project, events.SESSION_JOINED)
        by_vera = [e for e in logged if e.metadata["user_id"] == vera.id]
        assert 5 <= len(by_vera) <= 7  # the bucket, and what refills while the test runs
        assert server.rooms.sessions.skipped >= 33


async def test_every_logged_join_gets_its_leave_at_shutdown(settings: Settings) -> None:
    async with serving(settings) as server:
        _alice, _bob, project, a, b = await server.owner_and_member("editor")
        await eventually(lambda: server.rooms.sessions.idle)
    assert {await a.wait_closed(), await b.wait_closed()} <= {1001, 1012}
    store = await open_event_store(settings)
    try:
        logged = await store.read_stream(events.stream_name(project))
    finally:
        await store.close()
    joined = [e.metadata["connection_id"] for e in logged if e.type == events.SESSION_JOINED]
    left = [e.metadata["connection_id"] for e in logged if e.type == events.SESSION_LEFT]
    assert len(joined) == 2
    assert sorted(joined) == sorted(left)
