"""The in-memory backend: a real event store that keeps everything in lists and dicts.

It passes the same conformance suite as the SQL backends; it is not durable across processes."""

from __future__ import annotations

import asyncio
import bisect
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from eventstore.errors import InvalidEventError, StoreClosedError
from eventstore.limits import (
    Limits,
    check_position,
    check_snapshot,
    check_stream,
    check_version,
)
from eventstore.model import ANY, AppendResult, NewEvent, RecordedEvent, Snapshot
from eventstore.planning import (
    Accepted,
    AppendRequest,
    BatchPlanner,
    PriorEvent,
    Rejected,
    Replayed,
)
from eventstore.signal import CommitSignal
from eventstore.stats import StoreStats
from eventstore.subscription import Subscription


class MemoryEventStore:
    """Event store held in this process's memory."""

    def __init__(self, limits: Limits | None = None, poll_interval: float = 1.0) -> None:
        self.limits = limits or Limits()
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._keys: dict[tuple[str, str], RecordedEvent] = {}
        self._snapshots: dict[str, list[Snapshot]] = {}
        self._signal = CommitSignal()
        self._poll_interval = poll_interval
        self._closed = False
        self._stats = StoreStats()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the event store is closed")

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
    ) -> AppendResult:
        self._check_open()
        request = AppendRequest.checked(stream, events, expected_version, self.limits)
        prior = {
            (stream, key): PriorEvent(e.version, e.position, e.type, e.data)
            for key in request.keys
            if (e := self._keys.get((stream, key))) is not None
        }
        planner = BatchPlanner({stream: len(self._streams.get(stream, ()))}, prior)
        outcome = planner.plan(request)
        if isinstance(outcome, Rejected):
            raise outcome.error
        if isinstance(outcome, Replayed):
            self._count(len(request.events), 0)
            return outcome.result
        assert isinstance(outcome, Accepted)
        now = datetime.now(UTC)
        base = len(self._events)
        records = [
            RecordedEvent(
                position=base + i + 1,
                stream=stream,
                version=outcome.first_version + i,
                type=e.type,
                data=e.data,
                metadata_json=e.metadata_json,
                recorded_at=now,
                idempotency_key=e.idempotency_key,
            )
            for i, e in enumerate(request.events)
        ]
        self._events.extend(records)
        self._streams.setdefault(stream, []).extend(records)
        for record in records:
            if record.idempotency_key is not None:
                self._keys[(stream, record.idempotency_key)] = record
        self._signal.publish(records[-1].position)
        self._count(len(records), 1)
        return AppendResult(
            stream,
            records[0].version,
            records[-1].version,
            records[0].position,
            records[-1].position,
        )

    def _count(self, events: int, commits: int) -> None:
        """One append answered with success: `events` written in `commits` commits."""
        s = self._stats
        self._stats = StoreStats(s.appends + 1, s.events + events, s.commits + commits)

    def stats(self) -> StoreStats:
        return self._stats

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        check_stream(stream)
        start = max(check_version(from_version, "from_version"), 1) - 1
        records = self._streams.get(stream, [])
        end = len(records) if to_version is None else check_version(to_version, "to_version")
        selected = records[start:end]
        return selected if limit is None else selected[: check_version(limit, "limit")]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        self._check_open()
        start = check_position(after_position)
        return self._events[start : start + check_version(limit, "limit")]

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        check_position(after_position)
        return Subscription(
            self, after_position, batch_size=batch_size, poll_interval=self._poll_interval
        )

    async def head_position(self) -> int:
        self._check_open()
        return len(self._events)

    async def stream_version(self, stream: str) -> int:
        self._check_open()
        return len(self._streams.get(check_stream(stream), ()))

    async def save_snapshot(
        self,
        stream: str,
        version: int,
        state: bytes,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._check_open()
        check_stream(stream)
        check_version(version)
        meta = json.loads(check_snapshot(state, metadata, self.limits))
        if version == 0 or version > len(self._streams.get(stream, ())):
            raise InvalidEventError(f"stream {stream!r} has no version {version}")
        snaps = self._snapshots.setdefault(stream, [])
        versions = [s.version for s in snaps]
        index = bisect.bisect_left(versions, version)
        snap = Snapshot(stream, version, state, meta, datetime.now(UTC))
        if index < len(snaps) and snaps[index].version == version:
            snaps[index] = snap
        else:
            snaps.insert(index, snap)
        kept = self.limits.snapshots_kept([s.version for s in snaps], version, len(state))
        snaps[:] = [s for s in snaps if s.version in kept]

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        self._check_open()
        check_stream(stream)
        snaps = self._snapshots.get(stream, [])
        if max_version is not None:
            check_version(max_version, "max_version")
            snaps = [s for s in snaps if s.version <= max_version]
        return snaps[-1] if snaps else None

    async def read_from_snapshot(
        self, stream: str, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        snapshot = await self.load_snapshot(stream)
        after = 0 if snapshot is None else snapshot.version
        return snapshot, await self.read_stream(stream, after + 1, limit=limit)

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        if self._closed:
            return False
        return await self._signal.wait(after_position, timeout)

    async def close(self) -> None:
        self._closed = True
        self._signal.poke()
        await asyncio.sleep(0)
