"""The events every benchmark writes: one fixed shape, so that the store's figures and the raw
database ceilings measure the same rows."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from domain.events import DOC_UPDATED, stream_name
from eventstore import NewEvent

DATA_BYTES = 100
EVENT_TYPE = DOC_UPDATED
METADATA: dict[str, Any] = {"user": "u-123", "node": "n1"}
_PAYLOADS = 1024  # distinct data payloads, cycled; their content does not matter to the database


@dataclass(frozen=True, slots=True)
class Row:
    """One event as a raw insert writes it (the columns the store writes, minus recorded_at)."""

    position: int
    stream: str
    version: int
    type: str
    data: bytes
    metadata: str
    idempotency_key: str | None = None


@dataclass(slots=True)
class Workload:
    """Event generator. Data is `DATA_BYTES` random bytes; metadata is `METADATA`."""

    payloads: list[bytes] = field(
        default_factory=lambda: [os.urandom(DATA_BYTES) for _ in range(_PAYLOADS)]
    )
    _next: int = 0

    @property
    def metadata_json(self) -> str:
        return json.dumps(METADATA, separators=(",", ":"))

    def shape(self) -> dict[str, Any]:
        """The exact sizes written, for the report."""
        return {
            "type": EVENT_TYPE,
            "type_bytes": len(EVENT_TYPE.encode()),
            "data_bytes": DATA_BYTES,
            "metadata": METADATA,
            "metadata_json_bytes": len(self.metadata_json.encode()),
            "stream_name_bytes": len(new_stream().encode()),
            "idempotency_key": None,
        }

    def _payload(self) -> bytes:
        data = self.payloads[self._next % len(self.payloads)]
        self._next += 1
        return data

    def events(self, count: int) -> list[NewEvent]:
        return [NewEvent(EVENT_TYPE, self._payload(), METADATA) for _ in range(count)]

    def rows(self, stream: str, first_position: int, count: int) -> list[Row]:
        meta = self.metadata_json
        return [
            Row(first_position + i, stream, first_position + i, EVENT_TYPE, self._payload(), meta)
            for i in range(count)
        ]


def new_stream() -> str:
    """A project stream name, as the application names them."""
    return stream_name(str(uuid.uuid4()))
