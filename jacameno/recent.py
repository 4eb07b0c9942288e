"""Values read lately, trusted for a while without reading them again: what the collaboration
gatekeeper and the catalog keep so that a burst of requests waits for no database."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """Values read lately, by key. Each is trusted for `seconds` from the moment its read began,
    not ended (a change made while it was under way may be missing from it), and at most `size`
    of them are kept, so that memory stays bounded: past that the oldest read goes first,
    whether or not it was used since. The time is the caller's (a monotonic clock), so that a
    test can move it."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds = seconds
        self._size = size
        self._values: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, now: float) -> V | None:
        """The value read for `key` if it is still trusted at `now`, else None (and it is
        forgotten)."""
        found = self._values.get(key)
        if found is None:
            return None
        if now - found[0] >= self._seconds:
            del self._values[key]
            return None
        return found[1]

    def put(self, key: str, value: V, read_at: float) -> None:
        """Keep `value` for `key`, read at `read_at`, in place of any earlier one: it becomes
        the newest read, and the oldest ones go if more than `size` are kept."""
        self._values.pop(key, None)
        self._values[key] = (read_at, value)
        while len(self._values) > self._size:
            self._values.popitem(last=False)

    def drop(self, key: str) -> None:
        """Forget `key`, if it is kept."""
        self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()
