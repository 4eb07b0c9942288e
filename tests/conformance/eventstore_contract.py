"""The EventStore contract, one behaviour per test: appends and reads, optimistic concurrency,
idempotency, snapshots, payloads, refused input and closing."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    EventStore,
    IdempotencyError,
    InvalidEventError,
    Limits,
    NewEvent,
    StoreClosedError,
    StoreStats,
)
from tests.conformance.eventstore_support import Backend, event, events, summary

BadCall = Callable[[EventStore], Awaitable[object]]


def _bad(**fields: Any) -> NewEvent:
    """A NewEvent holding a value its type annotations forbid."""
    base: dict[str, Any] = {"type": "thing.happened", "data": b"", "metadata": {}}
    base.update(fields)
    return NewEvent(**base)


class _Opaque:
    pass


# Each call is refused with InvalidEventError and writes nothing.
INVALID_APPENDS: dict[str, BadCall] = {
    "empty stream name": lambda s: s.append("", [event()]),
    "stream name of 201 characters": lambda s: s.append("s" * 201, [event()]),
    "stream name that is not a str": lambda s: s.append(cast(Any, 42), [event()]),
    "stream name with NUL": lambda s: s.append("a\x00b", [event()]),
    "expected version -7": lambda s: s.append("s", [event()], -7),
    "expected version that is a bool": lambda s: s.append("s", [event()], cast(Any, True)),
    "data that is a str": lambda s: s.append("s", [_bad(data="text")]),
    "data that is an int": lambda s: s.append("s", [_bad(data=7)]),
    "metadata holding a set": lambda s: s.append("s", [event(tags={1, 2})]),
    "metadata holding an object": lambda s: s.append("s", [event(thing=_Opaque())]),
    "metadata holding NaN": lambda s: s.append("s", [event(level=math.nan)]),
    "metadata holding infinity": lambda s: s.append("s", [event(level=math.inf)]),
    "metadata value with NUL": lambda s: s.append("s", [event(name="a\x00b")]),
    "metadata key with NUL": lambda s: s.append("s", [_bad(metadata={"a\x00": 1})]),
    "metadata that is not a mapping": lambda s: s.append("s", [_bad(metadata=[1, 2])]),
    "a non-NewEvent in the list": lambda s: s.append("s", [event(), cast(Any, {"type": "x"})]),
    "a lone NewEvent instead of a list": lambda s: s.append("s", cast(Any, event())),
    "an empty list of events": lambda s: s.append("s", []),
    "an empty event type": lambda s: s.append("s", [event(type="")]),
    "an event type of 101 characters": lambda s: s.append("s", [event(type="t" * 101)]),
    "an event type that is not a str": lambda s: s.append("s", [_bad(type=3)]),
    "an empty idempotency key": lambda s: s.append("s", [event(key="")]),
    "an idempotency key of 201 characters": lambda s: s.append("s", [event(key="k" * 201)]),
    "a key twice in one append": lambda s: s.append("s", [event(key="k"), event(key="k")]),
    "a bad event after good ones": lambda s: s.append("s", [event(), event(), event(type="")]),
}

INVALID_READS: dict[str, BadCall] = {
    "read_stream of an empty name": lambda s: s.read_stream(""),
    "read_stream of a name that is not a str": lambda s: s.read_stream(cast(Any, None)),
    "read_stream from version -1": lambda s: s.read_stream("s", from_version=-1),
    "read_stream to version -1": lambda s: s.read_stream("s", to_version=-1),
    "read_stream with limit -1": lambda s: s.read_stream("s", limit=-1),
    "read_all after position -1": lambda s: s.read_all(after_position=-1),
    "read_all with limit -1": lambda s: s.read_all(limit=-1),
    "stream_version of an empty name": lambda s: s.stream_version(""),
    "save_snapshot at version -1": lambda s: s.save_snapshot("s", -1, b"state"),
    "save_snapshot of a str state": lambda s: s.save_snapshot("s", 1, cast(Any, "state")),
    "save_snapshot with NaN metadata": lambda s: s.save_snapshot("s", 1, b"", {"x": math.nan}),
    "load_snapshot below version -1": lambda s: s.load_snapshot("s", max_version=-1),
    "read_from_snapshot with limit -1": lambda s: s.read_from_snapshot("s", -1),
    "read_from_snapshot of an empty name": lambda s: s.read_from_snapshot("", 10),
}


async def _assert_unchanged(store: EventStore, head: int, version: int) -> None:
    assert await store.head_position() == head
    assert await store.stream_version("s") == version
    assert [e.position for e in await store.read_all()] == list(range(1, head + 1))


class ContractTests:
    """Needs a `store` fixture (an open, empty store, closed after the test) and `backend` (to
    open a store with other options)."""

    # -- appends and reads -----------------------------------------------------------------

    async def test_an_empty_log_has_head_zero_and_no_events(self, store: EventStore) -> None:
        assert await store.head_position() == 0
        assert await store.stream_version("nothing-here") == 0
        assert await store.read_all() == []
        assert await store.read_stream("nothing-here") == []

    async def test_versions_start_at_one_and_positions_are_global_without_gaps(
        self, store: EventStore
    ) -> None:
        first = await store.append("a", events(2))
        second = await store.append("b", events(3))
        third = await store.append("a", events(1))
        assert first == AppendResult("a", 1, 2, 1, 2)
        assert second == AppendResult("b", 1, 3, 3, 5)
        assert third == AppendResult("a", 3, 3, 6, 6)
        assert list(third.positions) == [6]
        recorded = await store.read_all()
        assert [(e.position, e.stream, e.version) for e in recorded] == [
            (1, "a", 1),
            (2, "a", 2),
            (3, "b", 1),
            (4, "b", 2),
            (5, "b", 3),
            (6, "a", 3),
        ]
        assert await store.head_position() == 6
        assert await store.stream_version("a") == 3
        assert await store.stream_version("b") == 3

    async def test_recorded_events_keep_what_was_appended(self, store: EventStore) -> None:
        await store.append("s", [event("clip.added", b"\x00\xffbytes", key="k1", user="u1")])
        (recorded,) = await store.read_stream("s")
        assert summary(recorded) == (1, "s", 1, "clip.added", b"\x00\xffbytes", "k1")
        assert recorded.metadata == {"user": "u1"}
        assert isinstance(recorded.recorded_at, datetime)
        assert recorded.recorded_at.utcoffset() is not None
        (from_all,) = await store.read_all()
        assert summary(from_all) == summary(recorded)

    async def test_read_stream_selects_a_version_range_in_order(self, store: EventStore) -> None:
        await store.append("s", events(5))
        await store.append("other", events(2))

        async def versions(**options: Any) -> list[int]:
            return [e.version for e in await store.read_stream("s", **options)]

        assert await versions() == [1, 2, 3, 4, 5]
        assert await versions(from_version=2, to_version=4) == [2, 3, 4]
        assert await versions(from_version=3) == [3, 4, 5]
        assert await versions(to_version=2) == [1, 2]
        assert await versions(from_version=2, limit=2) == [2, 3]
        assert await versions(limit=0) == []
        assert await versions(from_version=0) == [1, 2, 3, 4, 5]
        assert await versions(from_version=6) == []
        assert await versions(from_version=4, to_version=3) == []
        assert [e.data for e in await store.read_stream("s", 2, 3)] == [b"e1", b"e2"]

    async def test_read_all_pages_after_a_position(self, store: EventStore) -> None:
        await store.append("a", events(4))
        await store.append("b", events(3))

        async def positions(after: int, limit: int = 1000) -> list[int]:
            return [e.position for e in await store.read_all(after, limit)]

        assert await positions(0) == [1, 2, 3, 4, 5, 6, 7]
        assert await positions(2, 3) == [3, 4, 5]
        assert await positions(5) == [6, 7]
        assert await positions(7) == []
        assert await positions(100) == []
        assert await positions(0, 0) == []
        pages: list[int] = []
        while page := await store.read_all(pages[-1] if pages else 0, 2):
            pages.extend(e.position for e in page)
        assert pages == [1, 2, 3, 4, 5, 6, 7]

    async def test_names_and_types_at_their_longest_are_accepted(self, store: EventStore) -> None:
        name = "s" * 200
        result = await store.append(name, [event("t" * 100, key="k" * 200)])
        assert result.stream == name
        (recorded,) = await store.read_stream(name)
        assert recorded.type == "t" * 100
        assert recorded.idempotency_key == "k" * 200
        assert await store.stream_version("ü🎵-stream") == 0
        await store.append("ü🎵-stream", events(1))
        assert await store.stream_version("ü🎵-stream") == 1

    # -- optimistic concurrency ------------------------------------------------------------

    async def test_expected_version_any_always_appends(self, store: EventStore) -> None:
        assert (await store.append("s", events(1), ANY)).last_version == 1
        assert (await store.append("s", events(1), ANY)).last_version == 2

    async def test_expected_no_stream_appends_only_to_a_new_stream(self, store: EventStore) -> None:
        assert (await store.append("s", events(2), NO_STREAM)).last_version == 2
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s", events(1), NO_STREAM)
        assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
            "s",
            NO_STREAM,
            2,
        )
        await _assert_unchanged(store, head=2, version=2)

    async def test_expected_stream_exists_refuses_a_new_stream(self, store: EventStore) -> None:
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s", events(1), STREAM_EXISTS)
        assert (caught.value.expected, caught.value.actual) == (STREAM_EXISTS, 0)
        await _assert_unchanged(store, head=0, version=0)
        await store.append("s", events(1))
        assert (await store.append("s", events(1), STREAM_EXISTS)).last_version == 2

    async def test_exact_expected_version_appends_only_at_that_version(
        self, store: EventStore
    ) -> None:
        assert (await store.append("s", events(1), 0)).first_version == 1
        assert (await store.append("s", events(2), 1)).last_version == 3
        for wrong in (0, 2, 4, 100):
            with pytest.raises(ConcurrencyError) as caught:
                await store.append("s", events(1), wrong)
            assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
                "s",
                wrong,
                3,
            )
            assert "3" in str(caught.value)
        await _assert_unchanged(store, head=3, version=3)

    async def test_a_conflict_writes_none_of_the_append(self, store: EventStore) -> None:
        await store.append("s", events(1))
        with pytest.raises(ConcurrencyError):
            await store.append("s", [event(key="a"), event(key="b")], 0)
        await _assert_unchanged(store, head=1, version=1)
        result = await store.append("s", [event(key="a"), event(key="b")], 1)
        assert result == AppendResult("s", 2, 3, 2, 3)

    async def test_stats_count_appends_events_and_commits(self, store: EventStore) -> None:
        assert store.stats() == StoreStats()
        await store.append("s", events(3))
        await store.append("t", events(1))
        with pytest.raises(ConcurrencyError):
            await store.append("t", events(1), NO_STREAM)
        assert store.stats() == StoreStats(appends=2, events=4, commits=2, paced=0)

    # -- idempotency -----------------------------------------------------------------------

    async def test_a_repeated_append_returns_the_original_result(self, store: EventStore) -> None:
        batch = [event("a.done", b"1", key="k1"), event("b.done", b"2", key="k2")]
        original = await store.append("s", batch, NO_STREAM)
        await store.append("s", events(2))
        await store.append("other", events(1))
        again = await store.append("s", batch, NO_STREAM)
        assert again == original == AppendResult("s", 1, 2, 1, 2)
        assert await store.append("s", batch, ANY) == original
        assert await store.head_position() == 5
        assert await store.stream_version("s") == 4

    async def test_a_key_reused_with_other_data_is_refused(self, store: EventStore) -> None:
        await store.append("s", [event("a.done", b"1", key="k")])
        with pytest.raises(IdempotencyError):
            await store.append("s", [event("a.done", b"2", key="k")])
        with pytest.raises(IdempotencyError):
            await store.append("s", [event("b.done", b"1", key="k")])
        await _assert_unchanged(store, head=1, version=1)

    async def test_an_old_key_mixed_with_new_events_is_refused(self, store: EventStore) -> None:
        old = event("a.done", b"1", key="old")
        await store.append("s", [old])
        with pytest.raises(IdempotencyError):
            await store.append("s", [old, event(key="new")])
        with pytest.raises(IdempotencyError):
            await store.append("s", [event(key="new"), old])
        with pytest.raises(IdempotencyError):
            await store.append("s", [old, event()])
        await _assert_unchanged(store, head=1, version=1)
        assert await store.read_stream("s", 2) == []

    async def test_keys_of_different_appends_cannot_be_replayed_together(
        self, store: EventStore
    ) -> None:
        first, second = event(key="k1"), event(key="k2")
        await store.append("s", [first])
        await store.append("other", events(1))
        await store.append("s", [second])
        with pytest.raises(IdempotencyError):
            await store.append("s", [first, second])
        assert await store.head_position() == 3

    async def test_idempotency_keys_are_per_stream(self, store: EventStore) -> None:
        same = event("a.done", b"1", key="k")
        assert await store.append("a", [same]) == AppendResult("a", 1, 1, 1, 1)
        assert await store.append("b", [same]) == AppendResult("b", 1, 1, 2, 2)
        assert await store.append("b", [event("other", b"2", key="k2")]) == AppendResult(
            "b", 2, 2, 3, 3
        )
        assert [e.idempotency_key for e in await store.read_all()] == ["k", "k", "k2"]

    async def test_concurrent_appends_with_one_key_write_once(self, store: EventStore) -> None:
        await store.append("noise", events(1))
        batch = [event("a.done", b"x", key="k1"), event("a.done", b"y", key="k2")]
        results = await asyncio.gather(*(store.append("s", batch) for _ in range(8)))
        assert set(results) == {AppendResult("s", 1, 2, 2, 3)}
        assert await store.head_position() == 3
        assert [e.data for e in await store.read_stream("s")] == [b"x", b"y"]

    async def test_concurrent_appends_reusing_a_key_with_other_data_fail_alone(
        self, store: EventStore
    ) -> None:
        calls = [store.append("s", [event(data=bytes([i]), key="k")]) for i in range(4)]
        calls.append(store.append("s", [event(data=b"free")]))
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        written = [o for o in outcomes[:4] if isinstance(o, AppendResult)]
        refused = [o for o in outcomes[:4] if isinstance(o, IdempotencyError)]
        assert (len(written), len(refused)) == (1, 3)
        assert isinstance(outcomes[4], AppendResult)
        assert await store.head_position() == 2
        assert await store.stream_version("s") == 2

    # -- snapshots -------------------------------------------------------------------------

    async def test_the_latest_snapshot_is_loaded(self, store: EventStore) -> None:
        assert await store.load_snapshot("s") is None
        await store.append("s", events(5))
        await store.save_snapshot("s", 2, b"at two", {"bytes": 6})
        await store.save_snapshot("s", 4, b"at four")
        snapshot = await store.load_snapshot("s")
        assert snapshot is not None
        assert (snapshot.stream, snapshot.version, snapshot.state) == ("s", 4, b"at four")
        assert snapshot.metadata == {}
        assert isinstance(snapshot.recorded_at, datetime)
        assert await store.load_snapshot("other") is None
        assert len(await store.read_stream("s")) == 5

    async def test_a_snapshot_at_or_below_a_version_is_loaded(self, store: EventStore) -> None:
        await store.append("s", events(6))
        await store.save_snapshot("s", 2, b"two", {"n": 2})
        await store.save_snapshot("s", 5, b"five")
        below_five = await store.load_snapshot("s", max_version=4)
        assert below_five is not None
        assert (below_five.version, below_five.state, below_five.metadata) == (2, b"two", {"n": 2})
        at_five = await store.load_snapshot("s", max_version=5)
        assert at_five is not None
        assert at_five.version == 5
        assert await store.load_snapshot("s", max_version=1) is None
        assert await store.load_snapshot("s", max_version=0) is None

    async def test_the_latest_snapshot_is_read_with_the_events_after_it(
        self, store: EventStore
    ) -> None:
        assert await store.read_from_snapshot("s", 10) == (None, [])
        await store.append("s", events(6))
        await store.append("other", events(2))
        snapshot, after = await store.read_from_snapshot("s", 4)
        assert snapshot is None
        assert [e.version for e in after] == [1, 2, 3, 4]
        assert after == await store.read_stream("s", limit=4)
        await store.save_snapshot("s", 2, b"two", {"n": 2})
        await store.save_snapshot("s", 4, b"four", {"n": 4})
        snapshot, after = await store.read_from_snapshot("s", 10)
        assert snapshot == await store.load_snapshot("s")
        assert snapshot is not None
        assert (snapshot.stream, snapshot.version, snapshot.state) == ("s", 4, b"four")
        assert snapshot.metadata == {"n": 4}
        assert after == await store.read_stream("s", 5)
        snapshot, after = await store.read_from_snapshot("s", 1)
        assert [e.version for e in after] == [5]
        await store.save_snapshot("s", 6, b"six")
        snapshot, after = await store.read_from_snapshot("s", 10)
        assert snapshot is not None
        assert (snapshot.version, snapshot.state, after) == (6, b"six", [])
        assert (await store.read_from_snapshot("other", 10))[0] is None

    async def test_saving_a_snapshot_version_again_replaces_it(self, store: EventStore) -> None:
        await store.append("s", events(3))
        await store.save_snapshot("s", 3, b"first", {"try": 1})
        await store.save_snapshot("s", 3, b"second", {"try": 2})
        snapshot = await store.load_snapshot("s")
        assert snapshot is not None
        assert (snapshot.version, snapshot.state, snapshot.metadata) == (3, b"second", {"try": 2})

    async def test_only_the_latest_snapshots_of_a_stream_are_kept(self, backend: Backend) -> None:
        store = await backend.open(limits=Limits(snapshots_per_stream=2))
        try:
            await store.append("s", events(6))
            await store.append("other", events(2))
            await store.save_snapshot("other", 1, b"other one")
            for version in range(1, 6):
                await store.save_snapshot("s", version, f"at {version}".encode())
            assert await store.load_snapshot("s", max_version=3) is None
            kept = [await store.load_snapshot("s", max_version=v) for v in (4, 5)]
            assert [(k.version, k.state) for k in kept if k is not None] == [
                (4, b"at 4"),
                (5, b"at 5"),
            ]
            await store.save_snapshot("s", 2, b"too old to keep")
            assert await store.load_snapshot("s", max_version=3) is None
            await store.save_snapshot("s", 5, b"again at 5")
            await store.save_snapshot("s", 6, b"at 6")
            assert await store.load_snapshot("s", max_version=4) is None
            at_five = await store.load_snapshot("s", max_version=5)
            assert at_five is not None
            assert at_five.state == b"again at 5"
            other = await store.load_snapshot("other")
            assert other is not None
            assert other.state == b"other one"
            assert len(await store.read_stream("s")) == 6
        finally:
            await store.close()

    async def test_a_snapshot_per_span_of_versions_is_kept_for_time_travel(
        self, backend: Backend
    ) -> None:
        limits = Limits(snapshots_per_stream=1, snapshot_spacing=10, spaced_snapshots=4)
        store = await backend.open(limits=limits)
        try:
            await store.append("s", events(80))
            for version in range(5, 36, 5):
                await store.save_snapshot("s", version, f"at {version}".encode())

            async def kept() -> list[int]:
                found = []
                for version in range(80, 0, -1):
                    snapshot = await store.load_snapshot("s", max_version=version)
                    if snapshot is not None and snapshot.version not in found:
                        found.append(snapshot.version)
                return sorted(found)

            # spans of 10: the highest of 0-9, 10-19, 20-29, and the newest
            assert await kept() == [5, 15, 25, 35]
            await store.save_snapshot("s", 12, b"not the highest of its span")
            assert await kept() == [5, 15, 25, 35]
            # at 40 and beyond, 4 spans of 10 are too many: spans of 20 (0-19, 20-39, ...)
            await store.save_snapshot("s", 45, b"at 45")
            assert await kept() == [15, 35, 45]
            at_twenty = await store.load_snapshot("s", max_version=20)
            assert at_twenty is not None
            assert (at_twenty.version, at_twenty.state) == (15, b"at 15")
        finally:
            await store.close()

    async def test_a_snapshot_of_a_missing_version_is_refused(self, store: EventStore) -> None:
        await store.append("s", events(2))
        for stream, version in (("s", 3), ("s", 0), ("nothing", 1)):
            with pytest.raises(InvalidEventError, match="version"):
                await store.save_snapshot(stream, version, b"state")
        assert await store.load_snapshot("s") is None
        assert await store.load_snapshot("nothing") is None

    async def test_a_snapshot_state_must_be_bytes(self, store: EventStore) -> None:
        await store.append("s", events(1))
        for state in ("text", bytearray(b"x"), None, 1):
            with pytest.raises(InvalidEventError, match="bytes"):
                await store.save_snapshot("s", 1, cast(Any, state))
        await store.save_snapshot("s", 1, b"")
        snapshot = await store.load_snapshot("s")
        assert snapshot is not None
        assert snapshot.state == b""

    # -- payloads --------------------------------------------------------------------------

    async def test_a_one_mebibyte_payload_round_trips(self, store: EventStore) -> None:
        payload = os.urandom(1 << 20)
        await store.append("s", [event(data=payload), event(data=b"")])
        big, empty = await store.read_stream("s")
        assert big.data == payload
        assert empty.data == b""
        (snapshot_source,) = await store.read_all(limit=1)
        assert snapshot_source.data == payload
        await store.save_snapshot("s", 2, payload)
        snapshot = await store.load_snapshot("s")
        assert snapshot is not None
        assert snapshot.state == payload

    async def test_metadata_round_trips(self, store: EventStore) -> None:
        metadata: dict[str, Any] = {
            "user": "b9a4c1de-0000-4000-8000-000000000001",
            "unicode": 'ü ✓ 🎵 \u2028 "quoted" back\\slash',
            "ints": [0, -7, 2**53, -(2**62)],
            "floats": [1.5, -0.25, 0.1, 1e-7],
            "bools": [True, False],
            "nothing": None,
            "nested": {"a": {"b": [1, {"c": "d"}], "empty": {}}, "list": []},
            "ñame": "key with unicode",
        }
        await store.append("s", [event(**metadata)])
        (recorded,) = await store.read_stream("s")
        assert recorded.metadata == metadata
        assert [type(f) for f in recorded.metadata["floats"]] == [float] * 4
        assert [type(b) for b in recorded.metadata["bools"]] == [bool, bool]
        await store.save_snapshot("s", 1, b"", metadata)
        snapshot = await store.load_snapshot("s")
        assert snapshot is not None
        assert snapshot.metadata == metadata

    # -- refused input ---------------------------------------------------------------------

    @pytest.mark.parametrize("case", sorted(INVALID_APPENDS))
    async def test_an_invalid_append_is_refused_and_writes_nothing(
        self, store: EventStore, case: str
    ) -> None:
        await store.append("s", events(2))
        with pytest.raises(InvalidEventError) as caught:
            await INVALID_APPENDS[case](store)
        assert isinstance(caught.value, ValueError)
        assert len(str(caught.value)) > 10
        await _assert_unchanged(store, head=2, version=2)

    @pytest.mark.parametrize("case", sorted(INVALID_READS))
    async def test_invalid_read_arguments_are_refused(self, store: EventStore, case: str) -> None:
        await store.append("s", events(1))
        with pytest.raises(InvalidEventError) as caught:
            await INVALID_READS[case](store)
        assert len(str(caught.value)) > 10
        await _assert_unchanged(store, head=1, version=1)
        assert await store.load_snapshot("s") is None

    async def test_a_subscription_from_a_negative_position_is_refused(
        self, store: EventStore
    ) -> None:
        with pytest.raises(InvalidEventError):
            store.subscribe(-1)

    async def test_a_refused_append_does_not_disturb_concurrent_ones(
        self, store: EventStore
    ) -> None:
        good = [store.append("s", events(1)) for _ in range(3)]
        outcomes = await asyncio.gather(
            *good,
            store.append("s", [event(type="")]),
            store.append("s", events(1), 7),
            return_exceptions=True,
        )
        assert [type(o) for o in outcomes] == [
            AppendResult,
            AppendResult,
            AppendResult,
            InvalidEventError,
            ConcurrencyError,
        ]
        await _assert_unchanged(store, head=3, version=3)

    # -- closing ---------------------------------------------------------------------------

    async def test_a_closed_store_refuses_every_call(self, store: EventStore) -> None:
        await store.append("s", events(1))
        await store.close()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.append("s", events(1)),
            lambda: store.read_stream("s"),
            lambda: store.read_all(),
            lambda: store.head_position(),
            lambda: store.stream_version("s"),
            lambda: store.save_snapshot("s", 1, b""),
            lambda: store.load_snapshot("s"),
        ]
        for call in calls:
            with pytest.raises(StoreClosedError):
                await call()
        with pytest.raises(StoreClosedError):
            await anext(store.subscribe())
        await store.close()

    async def test_close_lets_queued_appends_finish(self, store: EventStore) -> None:
        tasks = [asyncio.create_task(store.append(f"s{i % 3}", events(2))) for i in range(20)]
        await asyncio.sleep(0)  # let every append reach the store before closing it
        await store.close()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        positions = sorted(p for r in results for p in r.positions)
        assert positions == list(range(1, 41))
        with pytest.raises(StoreClosedError):
            await store.append("s0", events(1))
