"""Input validation shared by every backend, so that all of them refuse the same things."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from eventstore.errors import InvalidEventError
from eventstore.model import ANY, NO_STREAM, STREAM_EXISTS, NewEvent

MAX_STREAM_NAME = 200
MAX_EVENT_TYPE = 100
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of one store. Defaults fit a music project's log."""

    max_event_bytes: int = 8 * 1024 * 1024
    max_metadata_bytes: int = 64 * 1024
    max_events_per_append: int = 10_000
    max_snapshot_bytes: int = 256 * 1024 * 1024
    # Snapshots kept per stream: saving one more deletes the oldest (lowest version). Loading
    # needs only the latest; older ones serve `load_snapshot(max_version=...)` and cost space.
    snapshots_per_stream: int = 3
    # Besides those, the highest snapshot of every span of `snapshot_spacing` versions is kept,
    # so that the document at an old version is rebuilt from a snapshot near it rather than from
    # version 1 (time travel, docs/history.md). Spans widen (doubling, neighbours merging) to
    # keep at most `spaced_snapshots` of them, and fewer when the document is large: about
    # `spaced_snapshot_bytes` of them per stream at the latest snapshot's size. 0: none kept.
    snapshot_spacing: int = 1000
    spaced_snapshots: int = 128
    spaced_snapshot_bytes: int = 384 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.snapshots_per_stream < 1:
            raise ValueError("snapshots_per_stream must be at least 1")
        if self.snapshot_spacing < 0 or self.spaced_snapshots < 1:
            raise ValueError("snapshot_spacing is 0 or more, spaced_snapshots at least 1")

    def snapshot_span(self, version: int, size: int = 0) -> int:
        """The width of the spans whose highest snapshot is kept, once the stream has reached
        `version` with a snapshot of `size` bytes (0: no spaced snapshots). Spans start at
        multiples of their width, so doubling it merges neighbours and keeps the higher of
        their two snapshots."""
        spans = min(self.spaced_snapshots, self.spaced_snapshot_bytes // max(size, 1))
        width = self.snapshot_spacing
        if width == 0 or spans == 0:
            return 0
        while version // width >= spans:
            width *= 2
        return width

    def snapshots_kept(self, versions: Sequence[int], version: int, size: int = 0) -> set[int]:
        """Of a stream's snapshot `versions`, those kept once it has one of `size` bytes at
        `version`: the `snapshots_per_stream` highest, and the highest of each span."""
        ordered = sorted(set(versions), reverse=True)
        kept = set(ordered[: self.snapshots_per_stream])
        width = self.snapshot_span(version, size)
        if width:
            spans: dict[int, int] = {}
            for v in ordered:
                spans.setdefault(v // width, v)
            kept.update(spans.values())
        return kept


class CheckedEvent(NamedTuple):
    """A validated event, with its metadata already encoded as JSON text. A named tuple: one is
    built per appended event, and a tuple is several times cheaper to build than a frozen
    dataclass (whose __init__ sets each field through object.__setattr__)."""

    type: str
    data: bytes
    metadata_json: str
    idempotency_key: str | None


def check_stream(stream: object) -> str:
    if not isinstance(stream, str):
        raise InvalidEventError(f"stream name must be a str, not {type(stream).__name__}")
    if not stream or len(stream) > MAX_STREAM_NAME:
        raise InvalidEventError(f"stream name must have 1 to {MAX_STREAM_NAME} characters")
    if "\x00" in stream:
        raise InvalidEventError("stream name must not contain NUL")
    return stream


def check_expected(expected: object) -> int:
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidEventError("expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int")
    if expected < 0 and expected not in (ANY, NO_STREAM, STREAM_EXISTS):
        raise InvalidEventError(f"expected_version {expected} is negative")
    return expected


def check_version(version: object, name: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidEventError(f"{name} must be an int >= 0, not {version!r}")
    return version


def check_position(position: object, name: str = "after_position") -> int:
    return check_version(position, name)


# One encoder for every call: building a JSONEncoder per call costs as much as the encoding.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def encode_metadata(metadata: object, limit: int) -> str:
    if not isinstance(metadata, dict):
        from collections.abc import Mapping

        if not isinstance(metadata, Mapping):
            raise InvalidEventError("metadata must be a mapping")
        metadata = dict(metadata)
    try:
        text = _ENCODER.encode(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"metadata cannot be encoded as JSON: {exc}") from exc
    if "\\u0000" in text or "\x00" in text:
        raise InvalidEventError("metadata must not contain NUL characters")
    if len(text.encode()) > limit:
        raise InvalidEventError(f"metadata is larger than {limit} bytes")
    return text


def _check_type(event_type: object) -> None:
    if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_EVENT_TYPE:
        raise InvalidEventError(f"event type must be a str of 1 to {MAX_EVENT_TYPE} characters")
    if "\x00" in event_type:
        raise InvalidEventError("event type must not contain NUL")


def _check_key(key: object, seen: set[str]) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidEventError(
            f"idempotency key must be a str of 1 to {MAX_IDEMPOTENCY_KEY} characters"
        )
    if "\x00" in key:
        raise InvalidEventError("idempotency key must not contain NUL")
    if key in seen:
        raise InvalidEventError(f"idempotency key {key!r} appears twice in one append")


def check_events(events: Sequence[NewEvent], limits: Limits) -> list[CheckedEvent]:
    """Validate a whole append before anything is written; raise InvalidEventError on the first
    bad event."""
    if isinstance(events, NewEvent) or not isinstance(events, Sequence):
        raise InvalidEventError("events must be a sequence of NewEvent")
    if not events:
        raise InvalidEventError("an append needs at least one event")
    if len(events) > limits.max_events_per_append:
        raise InvalidEventError(f"an append takes at most {limits.max_events_per_append} events")
    checked: list[CheckedEvent] = []
    keys: set[str] = set()
    encoded: dict[int, str] = {}  # by id(): one metadata object shared by many events, encoded once
    types: set[str] = set()  # types already found valid: most appends repeat one or two
    max_bytes = limits.max_event_bytes
    for event in events:
        if type(event) is not NewEvent and not isinstance(event, NewEvent):
            raise InvalidEventError(f"expected NewEvent, got {type(event).__name__}")
        event_type = event.type
        if type(event_type) is not str or event_type not in types:
            _check_type(event_type)
            types.add(event_type)
        data: object = event.data
        if type(data) is not bytes:
            if isinstance(data, bytearray | memoryview):
                data = bytes(data)
            if not isinstance(data, bytes):
                raise InvalidEventError(f"event data must be bytes, not {type(data).__name__}")
        if len(data) > max_bytes:
            raise InvalidEventError(f"event data is larger than {max_bytes} bytes")
        key = event.idempotency_key
        if key is not None:
            _check_key(key, keys)
            keys.add(key)
        metadata_json = encoded.get(id(event.metadata))
        if metadata_json is None:
            metadata_json = encode_metadata(event.metadata, limits.max_metadata_bytes)
            encoded[id(event.metadata)] = metadata_json
        checked.append(CheckedEvent(event_type, data, metadata_json, key))
    return checked


def check_snapshot(state: object, metadata: object, limits: Limits) -> str:
    """Validate a snapshot's state; return its metadata encoded as JSON text."""
    if not isinstance(state, bytes):
        raise InvalidEventError(f"snapshot state must be bytes, not {type(state).__name__}")
    if len(state) > limits.max_snapshot_bytes:
        raise InvalidEventError(f"snapshot is larger than {limits.max_snapshot_bytes} bytes")
    return encode_metadata(metadata if metadata is not None else {}, limits.max_metadata_bytes)
