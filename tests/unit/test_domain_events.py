"""The studio's streams and event payloads: names round trip, payloads keep their exact bytes."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crdt import EMPTY_UPDATE, UpdateSummary
from domain import events


@given(st.text())
def test_stream_names_round_trip(name: str) -> None:
    assert events.project_of(events.stream_name(name)) == name
    assert events.is_project_stream(events.stream_name(name))
    assert events.user_of(events.user_stream(name)) == name


def test_stream_names_are_what_the_log_holds() -> None:
    project = str(uuid.uuid4())
    assert events.stream_name(project) == "project-" + project
    assert events.user_stream("bob") == "user-bob"
    assert not events.is_project_stream(events.user_stream(project))


@given(st.dictionaries(st.text(), st.text() | st.integers() | st.none()))
def test_command_payloads_round_trip(data: dict[str, object]) -> None:
    assert events.decode(events.encode(data)) == data


def test_payloads_keep_their_bytes() -> None:
    assert (
        events.encode({"title": "Nuit étoilée", "n": 1})
        == '{"title":"Nuit étoilée","n":1}'.encode()
    )
    assert events.decode(b"") == {}
    deleted = events.user_deleted("bob")
    assert (deleted.type, deleted.data, deleted.metadata) == (
        events.USER_DELETED,
        b'{"user_id": "bob"}',
        {"user_id": "bob"},
    )
    joined = events.session_event(
        events.SESSION_JOINED, user_id="u", connection_id="c", node="n", role="editor"
    )
    assert joined.data == b'{"user_id":"u","connection_id":"c","node":"n","role":"editor"}'
    assert joined.metadata == {"user_id": "u", "connection_id": "c", "node": "n"}


def test_doc_updated_names_the_yjs_clients_it_carries() -> None:
    ids: dict[str, Any] = {"user_id": "u", "connection_id": "c", "node": "n"}
    one = events.doc_updated(EMPTY_UPDATE, UpdateSummary((7, 7), 2, 0), **ids)
    assert (one.type, one.data) == (events.DOC_UPDATED, EMPTY_UPDATE)
    assert one.metadata == {**ids, "client_id": 7}
    several = events.doc_updated(EMPTY_UPDATE, UpdateSummary((9, 3), 2, 0), **ids)
    assert several.metadata == {**ids, "client_id": None, "client_ids": [3, 9]}
    none = events.doc_updated(EMPTY_UPDATE, UpdateSummary((), 0, 0), **ids)
    assert none.metadata == {**ids, "client_id": None}
    restore = {"restores": {"version": 4, "path": None}}
    restoring = events.doc_updated(
        EMPTY_UPDATE, UpdateSummary((7,), 1, 0), **ids, via="restore", context=restore
    )
    assert restoring.metadata == {**ids, "client_id": 7, "via": "restore", **restore}


def test_doc_restored_names_the_version_the_part_the_update_and_who() -> None:
    event = events.doc_restored(version=7, path="tracks/t1", update_version=12, user_id="u1")
    assert event.type == events.DOC_RESTORED == "doc.restored"
    assert events.decode(event.data) == {"version": 7, "path": "tracks/t1", "update_version": 12}
    assert event.metadata == {"user_id": "u1"}
    unchanged = events.doc_restored(version=0, path=None, update_version=None, user_id="u1")
    assert events.decode(unchanged.data) == {"version": 0, "path": None, "update_version": None}
