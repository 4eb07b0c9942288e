"""Whether two documents hold the same Yjs state: the same items (state vectors) and the same
deletions (delete sets). Raw encodings cannot be compared byte for byte: pycrdt may list clients
and deleted ranges in any order, so both are decoded and normalized first."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc

from crdt.encoding import Reader
from crdt.update import MAX_CLOCK, check_state_vector

Ranges = dict[int, list[tuple[int, int]]]  # client -> merged (clock, end) ranges, sorted


def state_vector(doc: Doc[Any]) -> dict[int, int]:
    """The document's state vector (client -> next clock), decoded."""
    return check_state_vector(doc.get_state())


def deletions(doc: Doc[Any]) -> Ranges:
    """The document's delete set, as sorted, merged ranges per client."""
    # An update against the document's own state vector carries no structs, only the delete set.
    reader = Reader(doc.get_update(doc.get_state()), "update")
    if reader.count(1) != 0:
        raise reader.fail("structs in an update against the document's own state")
    ranges: dict[int, list[tuple[int, int]]] = {}
    for _ in range(reader.count(2)):
        client = reader.var_uint()
        for _ in range(reader.count(2)):
            clock = reader.var_uint(MAX_CLOCK)
            ranges.setdefault(client, []).append((clock, clock + reader.var_uint(MAX_CLOCK)))
    reader.end()
    return {client: _merged(found) for client, found in ranges.items() if found}


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def differences(a: Doc[Any], b: Doc[Any]) -> list[str]:
    """What differs between the Yjs states of `a` and `b`, in words (empty: the same state)."""
    found: list[str] = []
    mine, theirs = state_vector(a), state_vector(b)
    if mine != theirs:
        clients = sorted(c for c in mine.keys() | theirs.keys() if mine.get(c) != theirs.get(c))
        shown = ", ".join(f"{c}: {mine.get(c, 0)} vs {theirs.get(c, 0)}" for c in clients[:5])
        found.append(f"state vectors differ for {len(clients)} client(s) ({shown})")
    deleted_a, deleted_b = deletions(a), deletions(b)
    if deleted_a != deleted_b:
        clients = sorted(
            c for c in deleted_a.keys() | deleted_b.keys() if deleted_a.get(c) != deleted_b.get(c)
        )
        found.append(f"delete sets differ for {len(clients)} client(s)")
    return found
