"""The Protocol every event store backend implements (memory, sqlite, postgres)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from eventstore.model import ANY, AppendResult, NewEvent, RecordedEvent, Snapshot
from eventstore.stats import StoreStats
from eventstore.subscription import Subscription


@runtime_checkable
class EventStore(Protocol):
    """A durable, ordered log of events grouped in streams.

    Every event has a global position (1, 2, 3, ... with no gaps, in commit order) and a version
    within its stream (1, 2, 3, ...). Errors are those of `eventstore.errors`."""

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
    ) -> AppendResult:
        """Append `events` atomically at the end of `stream`, durably before returning.

        `expected_version` is ANY, NO_STREAM, STREAM_EXISTS or the exact current version; otherwise
        ConcurrencyError. If every event repeats an idempotency key already in the stream with the
        same type and data, nothing is written and the original result is returned; a key reused
        with other data, or mixed with new events, raises IdempotencyError. Bad input raises
        InvalidEventError; nothing is written in any error case."""
        ...

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of `stream` with `from_version <= version <= to_version`, in version order."""
        ...

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Up to `limit` committed events with position > `after_position`, in position order,
        without gaps: the result is always positions after_position+1, after_position+2, ..."""
        ...

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        """Every event after `after_position`, first those already committed, then live ones as
        they commit; each exactly once, in position order. Resume from a checkpoint by passing
        the last position processed."""
        ...

    async def head_position(self) -> int:
        """The position of the last committed event (0 for an empty log)."""
        ...

    async def stream_version(self, stream: str) -> int:
        """The version of the stream's last event (0 if the stream has none)."""
        ...

    async def save_snapshot(
        self,
        stream: str,
        version: int,
        state: bytes,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the folded state of `stream` at `version` (which must exist); saving the same
        version again replaces it. Snapshots never replace events: the log keeps them all.

        A stream keeps the `limits.snapshots_per_stream` snapshots of the highest versions and
        the highest of each span of `limits.snapshot_spacing` versions, spans that widen as the
        stream grows (`Limits.snapshots_kept`): in the same transaction, saving one deletes the
        others (so saving a version that would not be kept stores nothing)."""
        ...

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        """The latest snapshot of `stream` at or below `max_version` (any version if None)."""
        ...

    async def read_from_snapshot(
        self, stream: str, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        """The latest snapshot of `stream` (None if it has none) and up to `limit` of its events
        after the snapshot's version (after version 0 without one), in version order: what
        `load_snapshot` and then `read_stream` would give, read together (one round trip, one
        hop to a reader thread)."""
        ...

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        """Wait until an event after `after_position` may have committed, or `timeout` seconds
        pass; True if woken. A hint for subscribers, never a guarantee: re-read to find out."""
        ...

    def stats(self) -> StoreStats:
        """What the store has written since it opened (counters that only grow): appends,
        events, commits, paced commits. Cheap: no I/O."""
        ...

    async def close(self) -> None:
        """Finish appends already queued, then release connections. Later calls raise
        StoreClosedError."""
        ...
