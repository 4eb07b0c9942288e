"""HTTP range requests (RFC 9110 §14) and the entity-tag checks that go with them: which part of
a representation of `size` bytes a request asks for, and whether its validators still match.

Single byte ranges only: a request for several ranges, or in another unit, is answered whole
(200), which the RFC allows. A `bytes=` range that is malformed or does not overlap the
representation is `Unsatisfiable` (416 with `Content-Range: bytes */size`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """A byte range that is malformed or lies wholly past the end."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"no satisfiable byte range in a representation of {size} bytes")

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The bytes `start <= i < end` of a representation of `size` bytes (never empty)."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def requested(header: str | None, size: int) -> ByteRange | None:
    """The range a `Range` header asks for in a representation of `size` bytes; None to answer
    the whole (no header, another unit, several ranges); Unsatisfiable otherwise."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None:
        raise Unsatisfiable(size)
    first, last = match.group(1), match.group(2)
    if not first and not last:
        raise Unsatisfiable(size)
    if not first:  # a suffix: the last `last` bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size, size)
    start = int(first)
    if start >= size:
        raise Unsatisfiable(size)
    if not last:
        return ByteRange(start, size, size)
    end = int(last)
    if end < start:
        raise Unsatisfiable(size)
    return ByteRange(start, min(end, size - 1) + 1, size)


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def none_match(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison) or is `*`: then 304."""
    if header is None:
        return False
    bare = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == bare for tag in _tags(header))


def range_applies(if_range: str | None, etag: str) -> bool:
    """Whether a Range header is to be honoured given `If-Range`: absent, or naming `etag`
    exactly (strong comparison). A date, or a weak or other tag, means the client's copy may be
    stale: it gets the whole representation."""
    if if_range is None:
        return True
    tag = if_range.strip()
    return not tag.startswith("W/") and tag == etag
