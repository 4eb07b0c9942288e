"""Value types of the event log: what is appended, what is recorded, what an append returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Expected-version sentinels for `EventStore.append`. Exact versions are integers >= 0; a stream
# that has no events is at version 0 and its first event gets version 1.
ANY = -1
NO_STREAM = -2
STREAM_EXISTS = -3


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `idempotency_key`, when given, is unique within its stream."""

    type: str
    data: bytes = b""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the log holds it. `position` is global, gapless and in commit order."""

    position: int
    stream: str
    version: int
    type: str
    data: bytes
    metadata: dict[str, Any]
    recorded_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append's events landed: stream versions and global positions, both inclusive."""

    stream: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int

    @property
    def positions(self) -> range:
        return range(self.first_position, self.last_position + 1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stream's folded state at `version` (for a project: the Yjs update of the whole doc)."""

    stream: str
    version: int
    state: bytes
    metadata: dict[str, Any]
    recorded_at: datetime
