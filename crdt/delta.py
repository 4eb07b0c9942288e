"""Walking a Yjs change delta (a Y.Text's or a Y.Array's event: retain, insert, delete from
position 0) over a copy of the content kept elsewhere, as domain.rendering keeps the lyrics and
the array roots' renderings. No I/O, nothing of ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def replay(
    delta: Any,
    size: Callable[[], int],
    insert: Callable[[int, Any], int | None],
    delete: Callable[[int, int], None],
) -> bool:
    """Apply `delta` through `insert(at, value)` (the positions the value takes, or None to
    refuse it) and `delete(at, count)`, `size()` being the copy's length; False, with the copy
    to be dropped, if the delta is malformed, reaches past the end or has a value refused."""
    if not isinstance(delta, list):
        return False
    at = 0
    for op in delta:
        if not isinstance(op, dict):
            return False
        if "retain" in op:
            at += int(op["retain"])
        elif "insert" in op:
            taken = insert(at, op["insert"])
            if taken is None:
                return False
            at += taken
        elif "delete" in op:
            count = int(op["delete"])
            if at + count > size():
                return False
            delete(at, count)
        else:
            return False
        if at > size():
            return False
    return True
