"""A Hypothesis state machine: random appends (right and wrong expected versions, new and
repeated idempotency keys) and reads, checked against a plain Python model of the log."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    EventStore,
    IdempotencyError,
    NewEvent,
)
from tests.conformance.eventstore_support import Backend
from tests.hypothesis_profiles import examples

T = TypeVar("T")

STREAMS = ("project-a", "project-b", "user-c")
EXPECTATIONS = ("any", "no stream", "stream exists", "exact", "wrong")


@dataclass(frozen=True)
class Appended:
    """An append the model knows was written, with its keys."""

    stream: str
    events: tuple[NewEvent, ...]
    result: AppendResult


@dataclass(frozen=True)
class ModelEvent:
    stream: str
    version: int
    type: str
    data: bytes
    key: str | None


def _expected(choice: str, current: int) -> tuple[int, bool]:
    """The expected_version to send for `choice`, and whether the store must accept it."""
    if choice == "any":
        return ANY, True
    if choice == "no stream":
        return NO_STREAM, current == 0
    if choice == "stream exists":
        return STREAM_EXISTS, current > 0
    if choice == "exact":
        return current, True
    return (current + 1 if current == 0 else current - 1), False


class EventLogMachine(RuleBasedStateMachine):
    """Runs every store call through one event loop per example (the store lives in it)."""

    backend: Backend
    appended = Bundle("appended")

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        try:
            self.run(self.backend.reset())
            self.store: EventStore = self.run(self.backend.open())
        except BaseException:
            self.runner.close()
            raise
        self.log: list[ModelEvent] = []
        self.keys = itertools.count()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.runner.close()

    def version(self, stream: str) -> int:
        return sum(1 for e in self.log if e.stream == stream)

    def record(self, stream: str, batch: tuple[NewEvent, ...], result: AppendResult) -> None:
        current = self.version(stream)
        head = len(self.log)
        assert result == AppendResult(
            stream, current + 1, current + len(batch), head + 1, head + len(batch)
        )
        for i, new in enumerate(batch):
            self.log.append(
                ModelEvent(stream, current + 1 + i, new.type, new.data, new.idempotency_key)
            )

    @rule(
        target=appended,
        stream=st.sampled_from(STREAMS),
        payloads=st.lists(st.binary(max_size=8), min_size=1, max_size=3),
        expectation=st.sampled_from(EXPECTATIONS),
        keyed=st.booleans(),
    )
    def append(self, stream: str, payloads: list[bytes], expectation: str, keyed: bool) -> Any:
        batch = tuple(
            NewEvent(
                "thing.happened",
                data,
                {"n": i},
                f"key-{next(self.keys)}" if keyed else None,
            )
            for i, data in enumerate(payloads)
        )
        expected, accepted = _expected(expectation, self.version(stream))
        if not accepted:
            with pytest.raises(ConcurrencyError):
                self.run(self.store.append(stream, batch, expected))
            return multiple()
        result = self.run(self.store.append(stream, batch, expected))
        self.record(stream, batch, result)
        return Appended(stream, batch, result) if keyed else multiple()

    @rule(earlier=appended, expectation=st.sampled_from(EXPECTATIONS))
    def repeat_an_append(self, earlier: Appended, expectation: str) -> None:
        expected, _ = _expected(expectation, self.version(earlier.stream))
        head = len(self.log)
        assert self.run(self.store.append(earlier.stream, earlier.events, expected)) == (
            earlier.result
        )
        assert len(self.log) == head

    @rule(earlier=appended)
    def reuse_a_key_with_other_data(self, earlier: Appended) -> None:
        changed = (
            NewEvent(
                earlier.events[0].type,
                earlier.events[0].data + b"!",
                idempotency_key=earlier.events[0].idempotency_key,
            ),
            *earlier.events[1:],
        )
        with pytest.raises(IdempotencyError):
            self.run(self.store.append(earlier.stream, changed))

    @rule(earlier=appended)
    def mix_an_old_key_with_a_new_event(self, earlier: Appended) -> None:
        mixed = (*earlier.events, NewEvent("thing.happened", b"", {}, f"key-{next(self.keys)}"))
        with pytest.raises(IdempotencyError):
            self.run(self.store.append(earlier.stream, mixed))

    @rule(earlier=appended, other=st.sampled_from(STREAMS))
    def reuse_keys_in_another_stream(self, earlier: Appended, other: str) -> None:
        keys = {e.idempotency_key for e in earlier.events}
        if other == earlier.stream or any(e.stream == other and e.key in keys for e in self.log):
            return
        result = self.run(self.store.append(other, earlier.events))
        self.record(other, earlier.events, result)

    @rule(
        stream=st.sampled_from(STREAMS),
        low=st.integers(0, 12),
        high=st.none() | st.integers(0, 12),
        limit=st.none() | st.integers(0, 5),
    )
    def read_stream(self, stream: str, low: int, high: int | None, limit: int | None) -> None:
        want = [
            e
            for e in self.log
            if e.stream == stream and e.version >= low and (high is None or e.version <= high)
        ]
        if limit is not None:
            want = want[:limit]
        got = self.run(self.store.read_stream(stream, low, high, limit))
        assert [
            ModelEvent(e.stream, e.version, e.type, e.data, e.idempotency_key) for e in got
        ] == want

    @rule(after=st.integers(0, 40), limit=st.integers(0, 10))
    def read_all(self, after: int, limit: int) -> None:
        got = self.run(self.store.read_all(after, limit))
        assert [e.position for e in got] == list(
            range(after + 1, min(after + limit, len(self.log)) + 1)
        )
        assert [
            ModelEvent(e.stream, e.version, e.type, e.data, e.idempotency_key) for e in got
        ] == self.log[after : after + limit]

    @invariant()
    def head_and_versions_match_the_model(self) -> None:
        assert self.run(self.store.head_position()) == len(self.log)
        for stream in STREAMS:
            assert self.run(self.store.stream_version(stream)) == self.version(stream)


class ModelTests:
    """Needs a `backend` fixture; runs in a plain (synchronous) test, one loop per example."""

    def test_random_appends_and_reads_agree_with_a_model_of_the_log(self, backend: Backend) -> None:
        machine = type("BackendEventLogMachine", (EventLogMachine,), {"backend": backend})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples(25),
                stateful_step_count=25,
                deadline=None,
                database=None,  # keep the checkout clean; a failure prints its steps
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
