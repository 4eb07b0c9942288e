"""How one append is decided against the state of its stream: conflict, idempotent replay, or
accepted at the next versions. Every backend decides through this module, so that all of them
agree on the contract; the SQL backends apply it to a whole group-committed batch at once."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eventstore.errors import ConcurrencyError, EventStoreError, IdempotencyError
from eventstore.limits import CheckedEvent, Limits, check_events, check_expected, check_stream
from eventstore.model import ANY, NO_STREAM, STREAM_EXISTS, AppendResult, NewEvent


@dataclass(slots=True)
class AppendRequest:
    stream: str
    events: list[CheckedEvent]
    expected: int

    @classmethod
    def checked(
        cls, stream: object, events: Sequence[NewEvent], expected: object, limits: Limits
    ) -> AppendRequest:
        """Validate the arguments of `EventStore.append`; InvalidEventError if any is bad."""
        return cls(check_stream(stream), check_events(events, limits), check_expected(expected))

    @property
    def keys(self) -> list[str]:
        return [e.idempotency_key for e in self.events if e.idempotency_key is not None]


@dataclass(frozen=True, slots=True)
class PriorEvent:
    """An event already in the log, found by its idempotency key."""

    version: int
    position: int
    type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """Write the events at versions `first_version`.., as rows `row_offset`.. of the batch."""

    first_version: int
    row_offset: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """The request repeats an earlier append: answer with the earlier result, write nothing."""

    result: AppendResult


@dataclass(frozen=True, slots=True)
class Rejected:
    error: EventStoreError


@dataclass(frozen=True, slots=True)
class Deferred:
    """The request reuses a key first written in this same batch: decide it in the next batch."""


Outcome = Accepted | Replayed | Rejected | Deferred

# What a backend's batch commit answers for each request, in order: the result, the error that
# request alone gets, or None to decide it again in the next batch.
BatchAnswer = AppendResult | EventStoreError | None


def check_expected_version(stream: str, expected: int, current: int) -> None:
    """Raise ConcurrencyError unless a stream at version `current` satisfies `expected`."""
    if expected == ANY:
        return
    if expected == NO_STREAM:
        ok = current == 0
    elif expected == STREAM_EXISTS:
        ok = current > 0
    else:
        ok = current == expected
    if not ok:
        raise ConcurrencyError(stream, expected, current)


def replay(request: AppendRequest, prior: Mapping[str, PriorEvent]) -> AppendResult:
    """The original result of an append whose every event carries a key already in the log, with
    the same type and data; IdempotencyError if the request is not exactly such a repeat."""
    found: list[PriorEvent] = []
    for event in request.events:
        key = event.idempotency_key
        original = prior.get(key) if key is not None else None
        if original is None:
            raise IdempotencyError(
                f"append to {request.stream!r} mixes idempotency keys already used with new events"
            )
        if original.type != event.type or original.data != event.data:
            raise IdempotencyError(
                f"idempotency key {key!r} of stream {request.stream!r} was used with other data"
            )
        found.append(original)
    for before, after in itertools.pairwise(found):
        if after.version != before.version + 1 or after.position != before.position + 1:
            raise IdempotencyError(
                f"idempotency keys of stream {request.stream!r} belong to different appends"
            )
    return AppendResult(
        request.stream, found[0].version, found[-1].version, found[0].position, found[-1].position
    )


class BatchPlanner:
    """Decides the requests of one batch in order, tracking the versions and keys that earlier
    requests of the same batch take."""

    def __init__(
        self,
        versions: Mapping[str, int],
        prior: Mapping[tuple[str, str], PriorEvent],
    ) -> None:
        self._versions = dict(versions)
        self._prior = prior
        self._batch_keys: set[tuple[str, str]] = set()
        self.rows = 0

    def version(self, stream: str) -> int:
        return self._versions.get(stream, 0)

    @property
    def versions(self) -> dict[str, int]:
        return self._versions

    def plan(self, request: AppendRequest) -> Outcome:
        stream = request.stream
        keys = request.keys
        if any((stream, k) in self._batch_keys for k in keys):
            return Deferred()
        known = {k: self._prior[(stream, k)] for k in keys if (stream, k) in self._prior}
        try:
            if known:
                return Replayed(replay(request, known))
            current = self.version(stream)
            check_expected_version(stream, request.expected, current)
        except EventStoreError as exc:
            return Rejected(exc)
        outcome = Accepted(current + 1, self.rows)
        self._versions[stream] = current + len(request.events)
        self._batch_keys.update((stream, k) for k in keys)
        self.rows += len(request.events)
        return outcome


def answer_for(request: AppendRequest, outcome: Outcome, base: int) -> BatchAnswer:
    """What the appender gets for `outcome`, once the batch's rows start after position `base`."""
    if isinstance(outcome, Accepted):
        n = len(request.events)
        first = base + outcome.row_offset + 1
        return AppendResult(
            request.stream,
            outcome.first_version,
            outcome.first_version + n - 1,
            first,
            first + n - 1,
        )
    if isinstance(outcome, Replayed):
        return outcome.result
    if isinstance(outcome, Rejected):
        return outcome.error
    return None
