"""The event log: streams of events with per-stream versions and gapless global positions.

Backends: `eventstore.memory`, `eventstore.sqlite`, `eventstore.postgres`, behind the
`EventStore` Protocol. Knows nothing of CRDTs, HTTP, users or music."""

from eventstore.errors import (
    ConcurrencyError,
    EventStoreError,
    IdempotencyError,
    InvalidEventError,
    StoreClosedError,
    StoreUnavailableError,
)
from eventstore.groupcommit import Pacing
from eventstore.limits import Limits
from eventstore.model import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    NewEvent,
    RecordedEvent,
    Snapshot,
)
from eventstore.stats import StoreStats
from eventstore.store import EventStore
from eventstore.subscription import Subscription

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "ConcurrencyError",
    "EventStore",
    "EventStoreError",
    "IdempotencyError",
    "InvalidEventError",
    "Limits",
    "NewEvent",
    "Pacing",
    "RecordedEvent",
    "Snapshot",
    "StoreClosedError",
    "StoreStats",
    "StoreUnavailableError",
    "Subscription",
]
