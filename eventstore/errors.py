"""The exception tree of the event store.

    EventStoreError
    ├── InvalidEventError      bad input; nothing was written (also a ValueError)
    ├── ConcurrencyError       the stream's version was not the expected one; nothing was written
    ├── IdempotencyError       an idempotency key was reused with other data; nothing was written
    ├── StoreUnavailableError  the database cannot be reached or failed; the outcome of an append
    │                          that raised it is unknown: retry it with the same idempotency keys
    └── StoreClosedError       the store was closed (a StoreUnavailableError)

Backends translate their drivers' errors (sqlite3, asyncpg, OSError) into these at the boundary.
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event store raises on purpose."""


class InvalidEventError(EventStoreError, ValueError):
    """An argument is malformed (stream name, version, event type, data, metadata, key)."""


class ConcurrencyError(EventStoreError):
    """The stream was not at the expected version."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r} is at version {actual}, expected {describe_expected(expected)}"
        )


class IdempotencyError(EventStoreError):
    """An idempotency key was repeated with different data, or mixed with new keys."""


class StoreUnavailableError(EventStoreError):
    """The backing database failed or cannot be reached."""


class StoreClosedError(StoreUnavailableError):
    """The store has been closed."""


def describe_expected(expected: int) -> str:
    from eventstore.model import ANY, NO_STREAM, STREAM_EXISTS

    names = {ANY: "any", NO_STREAM: "no stream", STREAM_EXISTS: "an existing stream"}
    return names.get(expected, str(expected))
