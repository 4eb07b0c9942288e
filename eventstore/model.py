"""Value types of the event log: what is appended, what is recorded, what an append returns."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True, eq=False)
class RecordedEvent:
    """An event as the log holds it. `position` is global, gapless and in commit order.

    Metadata is kept as the JSON text the database returned and decoded on first use, since most
    readers (projections of one event type, replay) never look at most events' metadata."""

    position: int
    stream: str
    version: int
    type: str
    data: bytes
    metadata_json: str = field(repr=False)
    recorded_at: datetime
    idempotency_key: str | None = None
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def metadata(self) -> dict[str, Any]:
        decoded = self._metadata
        if decoded is None:
            decoded = json.loads(self.metadata_json)
            object.__setattr__(self, "_metadata", decoded)
        return decoded

    def _key(self) -> tuple[Any, ...]:
        return (
            self.position,
            self.stream,
            self.version,
            self.type,
            self.data,
            self.metadata,
            self.recorded_at,
            self.idempotency_key,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordedEvent):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]


class _Row(Protocol):
    """A row as a driver returns it: a tuple (sqlite3) or a record (asyncpg)."""

    def __getitem__(self, index: int, /) -> Any: ...


# The fields of a row as the SQL backends select them (`position, stream, version, type, data,
# metadata, idempotency_key, recorded_at`), by the slot each one fills.
_ROW_SLOTS = (
    "position",
    "stream",
    "version",
    "type",
    "data",
    "metadata_json",
    "idempotency_key",
    "recorded_at",
    "_metadata",
)
if set(_ROW_SLOTS) != set(RecordedEvent.__slots__):  # a field added without a place in rows
    raise TypeError("eventstore.model: _ROW_SLOTS does not name every field of RecordedEvent")


def records_from_rows(
    rows: Iterable[_Row], moment: Callable[[Any], datetime] | None = None
) -> list[RecordedEvent]:
    """The events of rows the store itself selected, in the column order of `_ROW_SLOTS`;
    `moment` turns a row's recorded_at into a datetime (None: it is one already).

    Every read of the log goes through here, so it is built for speed: fields are set through
    the slots' descriptors rather than the frozen dataclass' __init__ (which calls
    object.__setattr__ by name for each field, twice the cost), and `moment` is called once per
    distinct timestamp (all the events of one commit share one)."""
    new = object.__new__
    cls = RecordedEvent
    position, stream, version, type_, data, meta, key, at, decoded = (
        getattr(cls, name).__set__ for name in _ROW_SLOTS
    )
    moments: dict[Any, datetime] = {}
    events: list[RecordedEvent] = []
    append = events.append
    for row in rows:
        when = row[7]
        if moment is not None:
            raw = when
            when = moments.get(raw)
            if when is None:
                when = moments[raw] = moment(raw)
        event = new(cls)
        position(event, row[0])
        stream(event, row[1])
        version(event, row[2])
        type_(event, row[3])
        data(event, row[4])
        meta(event, row[5])
        key(event, row[6])
        at(event, when)
        decoded(event, None)
        append(event)
    return events


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
