"""How appends are validated (eventstore.limits) and decided (eventstore.planning), without I/O."""

from __future__ import annotations

import json
import math
from typing import Any, cast

import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    IdempotencyError,
    InvalidEventError,
    Limits,
    NewEvent,
)
from eventstore.limits import (
    check_events,
    check_expected,
    check_position,
    check_snapshot,
    check_stream,
    check_version,
    encode_metadata,
)
from eventstore.planning import (
    Accepted,
    AppendRequest,
    BatchPlanner,
    Deferred,
    PriorEvent,
    Rejected,
    Replayed,
    answer_for,
    check_expected_version,
    replay,
)

LIMITS = Limits()


def request(stream: str, *events: NewEvent, expected: int = ANY) -> AppendRequest:
    return AppendRequest.checked(stream, list(events), expected, LIMITS)


def keyed(key: str, data: bytes = b"d", type: str = "t.done") -> NewEvent:
    return NewEvent(type, data, idempotency_key=key)


# -- limits ---------------------------------------------------------------------------------


def test_stream_names_of_1_to_200_characters_are_accepted() -> None:
    assert check_stream("s") == "s"
    assert check_stream("s" * 200) == "s" * 200


@pytest.mark.parametrize("name", ["", "s" * 201, "a\x00b", None, 3, b"bytes"])
def test_other_stream_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidEventError, match="stream name"):
        check_stream(name)


@pytest.mark.parametrize("expected", [ANY, NO_STREAM, STREAM_EXISTS, 0, 5])
def test_expected_versions_are_the_sentinels_or_naturals(expected: int) -> None:
    assert check_expected(expected) == expected


@pytest.mark.parametrize("expected", [-4, -7, True, 1.0, "1", None])
def test_other_expected_versions_are_refused(expected: object) -> None:
    with pytest.raises(InvalidEventError, match="expected_version"):
        check_expected(expected)


@pytest.mark.parametrize("value", [-1, True, 1.5, None, "2"])
def test_versions_and_positions_must_be_naturals(value: object) -> None:
    with pytest.raises(InvalidEventError, match="from_version"):
        check_version(value, "from_version")
    with pytest.raises(InvalidEventError, match="after_position"):
        check_position(value)
    assert check_version(0) == 0
    assert check_position(12) == 12


def test_metadata_is_encoded_as_compact_json_keeping_unicode() -> None:
    text = encode_metadata({"user": "ü🎵", "n": [1, 2.5, None, True]}, 1000)
    assert text == '{"user":"ü🎵","n":[1,2.5,null,true]}'
    assert json.loads(text) == {"user": "ü🎵", "n": [1, 2.5, None, True]}


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"x": math.nan}, "JSON"),
        ({"x": -math.inf}, "JSON"),
        ({"x": {1, 2}}, "JSON"),
        ({"x": object()}, "JSON"),
        ({"x": "a\x00"}, "NUL"),
        ({"a\x00": 1}, "NUL"),
        ([("a", 1)], "mapping"),
        ({"x": "y" * 100}, "larger"),
    ],
)
def test_unencodable_or_large_metadata_is_refused(metadata: object, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        encode_metadata(metadata, 64)


def test_events_are_checked_into_bytes_and_json() -> None:
    checked = check_events(
        [NewEvent("a.done", cast(Any, bytearray(b"xy")), {"k": 1}, "key")], LIMITS
    )
    assert [(c.type, c.data, c.metadata_json, c.idempotency_key) for c in checked] == [
        ("a.done", b"xy", '{"k":1}', "key")
    ]


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([], "at least one"),
        (NewEvent("t"), "sequence"),
        ([NewEvent("t"), "not an event"], "NewEvent"),
        ([NewEvent("")], "event type"),
        ([NewEvent("t" * 101)], "event type"),
        ([NewEvent("a\x00")], "NUL"),
        ([NewEvent("t", cast(Any, "text"))], "bytes"),
        ([NewEvent("t", idempotency_key="")], "idempotency key"),
        ([NewEvent("t", idempotency_key="k" * 201)], "idempotency key"),
        ([NewEvent("t", idempotency_key="k"), NewEvent("t", idempotency_key="k")], "twice"),
    ],
)
def test_bad_events_are_refused(events: object, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        check_events(cast(Any, events), LIMITS)


def test_size_limits_of_a_store_are_enforced() -> None:
    small = Limits(max_event_bytes=4, max_metadata_bytes=10, max_events_per_append=2)
    check_events([NewEvent("t", b"1234"), NewEvent("t", b"")], small)
    with pytest.raises(InvalidEventError, match="larger than 4 bytes"):
        check_events([NewEvent("t", b"12345")], small)
    with pytest.raises(InvalidEventError, match="at most 2"):
        check_events([NewEvent("t")] * 3, small)
    with pytest.raises(InvalidEventError, match="metadata"):
        check_events([NewEvent("t", metadata={"long": "value"})], small)


def test_snapshot_state_must_be_bytes_within_the_limit() -> None:
    assert check_snapshot(b"state", None, LIMITS) == "{}"
    assert check_snapshot(b"", {"n": 1}, LIMITS) == '{"n":1}'
    with pytest.raises(InvalidEventError, match="bytes"):
        check_snapshot("state", None, LIMITS)
    with pytest.raises(InvalidEventError, match="larger"):
        check_snapshot(b"12345", None, Limits(max_snapshot_bytes=4))


# -- planning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "current", "ok"),
    [
        (ANY, 0, True),
        (ANY, 9, True),
        (NO_STREAM, 0, True),
        (NO_STREAM, 1, False),
        (STREAM_EXISTS, 0, False),
        (STREAM_EXISTS, 3, True),
        (0, 0, True),
        (3, 3, True),
        (2, 3, False),
        (4, 3, False),
    ],
)
def test_expected_version_against_the_current_one(expected: int, current: int, ok: bool) -> None:
    if ok:
        check_expected_version("s", expected, current)
        return
    with pytest.raises(ConcurrencyError) as caught:
        check_expected_version("s", expected, current)
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
        "s",
        expected,
        current,
    )


def test_conflict_messages_name_the_sentinels() -> None:
    assert "expected no stream" in str(ConcurrencyError("s", NO_STREAM, 2))
    assert "expected an existing stream" in str(ConcurrencyError("s", STREAM_EXISTS, 0))
    assert "at version 3, expected 1" in str(ConcurrencyError("s", 1, 3))


def test_a_full_repeat_replays_the_original_result() -> None:
    prior = {"k1": PriorEvent(4, 10, "t.done", b"a"), "k2": PriorEvent(5, 11, "t.done", b"b")}
    repeated = request("s", keyed("k1", b"a"), keyed("k2", b"b"))
    assert replay(repeated, prior) == AppendResult("s", 4, 5, 10, 11)


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ((keyed("k1", b"other"),), "other data"),
        ((keyed("k1", b"a", type="other.type"),), "other data"),
        ((keyed("k1", b"a"), keyed("new")), "mixes"),
        ((keyed("k1", b"a"), NewEvent("t.done", b"a")), "mixes"),
        ((keyed("k1", b"a"), keyed("k3", b"c")), "different appends"),
    ],
)
def test_an_inexact_repeat_is_refused(events: tuple[NewEvent, ...], reason: str) -> None:
    prior = {"k1": PriorEvent(4, 10, "t.done", b"a"), "k3": PriorEvent(9, 20, "t.done", b"c")}
    with pytest.raises(IdempotencyError, match=reason):
        replay(request("s", *events), prior)


def test_a_batch_gives_each_accepted_append_the_next_versions_and_rows() -> None:
    planner = BatchPlanner({"a": 3}, {})
    first = planner.plan(request("a", NewEvent("t"), NewEvent("t"), expected=3))
    second = planner.plan(request("b", NewEvent("t"), expected=NO_STREAM))
    third = planner.plan(request("a", NewEvent("t"), expected=5))
    assert [first, second, third] == [Accepted(4, 0), Accepted(1, 2), Accepted(6, 3)]
    assert planner.rows == 4
    assert planner.versions == {"a": 6, "b": 1}


def test_a_rejected_append_takes_no_versions_or_rows() -> None:
    planner = BatchPlanner({"a": 3}, {})
    rejected = planner.plan(request("a", NewEvent("t"), expected=NO_STREAM))
    assert isinstance(rejected, Rejected)
    assert isinstance(rejected.error, ConcurrencyError)
    assert planner.plan(request("a", NewEvent("t"), expected=3)) == Accepted(4, 0)
    assert planner.rows == 1


def test_a_key_already_in_the_log_replays_whatever_the_expected_version() -> None:
    prior = {("a", "k"): PriorEvent(2, 7, "t.done", b"d")}
    planner = BatchPlanner({"a": 5}, prior)
    outcome = planner.plan(request("a", keyed("k"), expected=NO_STREAM))
    assert outcome == Replayed(AppendResult("a", 2, 2, 7, 7))
    assert planner.rows == 0


def test_a_key_reused_within_one_batch_is_deferred_to_the_next() -> None:
    planner = BatchPlanner({}, {})
    assert planner.plan(request("a", keyed("k"))) == Accepted(1, 0)
    assert planner.plan(request("a", keyed("k"))) == Deferred()
    assert planner.plan(request("b", keyed("k"))) == Accepted(1, 1)


def test_answers_place_accepted_appends_after_the_batch_base() -> None:
    accepted = request("a", NewEvent("t"), NewEvent("t"))
    assert answer_for(accepted, Accepted(4, 3), base=10) == AppendResult("a", 4, 5, 14, 15)
    replayed = AppendResult("a", 1, 1, 1, 1)
    assert answer_for(accepted, Replayed(replayed), base=10) == replayed
    error = ConcurrencyError("a", 0, 1)
    assert answer_for(accepted, Rejected(error), base=10) is error
    assert answer_for(accepted, Deferred(), base=10) is None


def test_a_request_lists_its_idempotency_keys_in_order() -> None:
    assert request("s", keyed("b"), NewEvent("t"), keyed("a")).keys == ["b", "a"]
    with pytest.raises(InvalidEventError):
        request("", NewEvent("t"))
