"""A short edit from one text to another, fast on long texts: what a restore applies to a Y.Text
(crdt.reconcile) and what a diff shows of the lyrics (projections.diff).

The common prefix and suffix are set aside first (found by bisection over slice comparisons,
compared in C). The rest is compared with difflib's SequenceMatcher by lines, then by characters
within the lines that differ: by characters over a whole text it is quadratic (a minute for two
versions of lyrics of 46,000 characters), by lines a few milliseconds. A block of differing lines
too large to compare by characters in reasonable time (more than `CHARACTER_PAIRS` pairs) is
replaced whole. The edit turns one text into the other exactly, but it is a short edit, not
necessarily the keystrokes that were made.

`coarsened` bounds the number of changes in such an edit, for a caller whose every change costs
a walk of the text: a Y.Text insert or delete at an index walks the text's items from its start
(50 ms at the end of lyrics of 500,000 characters typed one by one), so 10,000 changes there
take minutes."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

CHARACTER_PAIRS = 4_000_000

# (tag, i1, i2, j1, j2) as SequenceMatcher's: before[i1:i2] becomes after[j1:j2]; tag is
# "equal", "replace", "delete" or "insert".
Opcode = tuple[str, int, int, int, int]


def common_ends(before: Sequence[Any], after: Sequence[Any]) -> tuple[int, int]:
    """The lengths of the longest common prefix of the two texts (or lists) and of the longest
    common suffix of what follows it."""
    limit = min(len(before), len(after))
    low, high = 0, limit  # the prefix's length lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if before[low:middle] == after[low:middle]:
            low = middle
        else:
            high = middle - 1
    prefix = low
    low, high = 0, limit - prefix
    while low < high:
        middle = (low + high + 1) // 2
        if (
            before[len(before) - middle : len(before) - low]
            == after[len(after) - middle : len(after) - low]
        ):
            low = middle
        else:
            high = middle - 1
    return prefix, low


def _matched(old: Sequence[str], new: Sequence[str]) -> Sequence[Opcode]:
    # autojunk would skip frequent items (spaces and vowels, blank lines) in 200 or more
    return SequenceMatcher(None, old, new, autojunk=False).get_opcodes()


def opcodes(before: str, after: str) -> list[Opcode]:
    """The edit from `before` to `after` as opcodes over their characters, in text order; no
    two neighbours are both `equal`, and none is empty."""
    prefix, suffix = common_ends(before, after)
    found: list[Opcode] = [("equal", 0, prefix, 0, prefix)]
    old, new = before[prefix : len(before) - suffix], after[prefix : len(after) - suffix]
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    old_at, new_at = _starts(old_lines, prefix), _starts(new_lines, prefix)
    for tag, i1, i2, j1, j2 in _matched(old_lines, new_lines):
        a1, a2, b1, b2 = old_at[i1], old_at[i2], new_at[j1], new_at[j2]
        if tag == "equal" or (a2 - a1) * (b2 - b1) > CHARACTER_PAIRS:
            found.append((tag, a1, a2, b1, b2))
            continue
        found += [
            (t, a1 + k1, a1 + k2, b1 + m1, b1 + m2)
            for t, k1, k2, m1, m2 in _matched(before[a1:a2], after[b1:b2])
        ]
    found.append(("equal", len(before) - suffix, len(before), len(after) - suffix, len(after)))
    merged: list[Opcode] = []
    for op in found:
        tag, i1, i2, j1, j2 = op
        if i1 == i2 and j1 == j2:
            continue
        if merged and merged[-1][0] == "equal" == tag:
            merged[-1] = ("equal", merged[-1][1], i2, merged[-1][3], j2)
        else:
            merged.append(op)
    return merged


def _starts(lines: list[str], offset: int) -> list[int]:
    """Where each line starts in the text, and where the last one ends."""
    starts = [offset]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def coarsened(found: list[Opcode], limit: int) -> list[Opcode]:
    """`found` (as `opcodes` returns it) with at most `limit` changes (at least 1): the longest
    equal stretches between changes are kept, and each group of changes between two of them,
    with the shorter equal stretches inside it, becomes one `replace` (or `delete`, `insert`)."""
    changes = [i for i, op in enumerate(found) if op[0] != "equal"]
    if len(changes) <= max(1, limit):
        return found
    # The equal stretches that separate two changes, longest first: keep limit - 1 of them.
    inner = [i for i in range(changes[0] + 1, changes[-1]) if found[i][0] == "equal"]
    kept = set(sorted(inner, key=lambda i: found[i][2] - found[i][1], reverse=True)[: limit - 1])
    merged: list[Opcode] = []
    start: Opcode | None = None  # the first op of the group being merged
    for index, op in enumerate(found):
        if op[0] == "equal" and (index in kept or index < changes[0] or index > changes[-1]):
            if start is not None:
                merged.append(_merged_change(start, found[index - 1]))
                start = None
            merged.append(op)
        elif start is None:
            start = op
    if start is not None:
        merged.append(_merged_change(start, found[-1]))
    return merged


def _merged_change(first: Opcode, last: Opcode) -> Opcode:
    i1, j1, i2, j2 = first[1], first[3], last[2], last[4]
    tag = "replace" if i2 > i1 and j2 > j1 else "delete" if i2 > i1 else "insert"
    return (tag, i1, i2, j1, j2)
