"""Where a document's astral characters (an emoji: two UTF-16 units, so two clocks) are, so that
an update cutting one in two is refused before it is applied or logged.

Yjs counts a text's positions in UTF-16 units, so a client can insert between the two units of
an emoji, or delete one of them. Yjs then holds two lone surrogates; yrs, whose strings are
UTF-8, cannot, and renders another text: with a JavaScript client inserting "a" inside the first
of "😀😀", the clients showed "\\ufffda\\ufffd😀" (a lone surrogate each side of the "a", read
back as U+FFFD) where a document rebuilt from the log showed "😀a😀", and deleting two
units across two emoji left the clients two lone surrogates and the log one whole emoji. The
room's read models and history would show other lyrics than its clients, for good.

So the room keeps, per client, the clocks of the second units of the astral characters it has
(sorted, in an array), and which of those characters' units its document has deleted. An update
is refused if one of its new items is typed right after a first unit or right before a second
one, or if one of its deleted ranges starts at a second unit whose first unit stays, or ends
after a first unit whose second unit stays. A deleted range that the document has already
deleted passes (a client's sync step 2 repeats its whole delete set): an honest client never
cuts a character, and a log that holds a cut from before this check still loads and syncs."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from crdt.errors import MalformedUpdate
from crdt.update import UpdateSummary


class Characters:
    """The second units of a document's astral characters, and which of their units it has
    deleted."""

    __slots__ = ("_deleted", "_halves")

    def __init__(self) -> None:
        self._halves: dict[int, array[int]] = {}
        self._deleted: dict[int, set[int]] = {}

    def check(self, summary: UpdateSummary, known: Callable[[int, int], object]) -> None:
        """MalformedUpdate if the update cuts an astral character in two; `known(client,
        clock)`: not None if the document has that item already (it passed before)."""
        if not self._halves and not summary.halves:
            return
        own = set(summary.halves)
        deleted = summary.deleted

        def half(client: int, clock: int) -> bool:
            return (client, clock) in own or self._half(client, clock)

        for client, clock, left_client, left_clock, right_client, right_clock in summary.between:
            if known(client, clock) is not None:
                continue
            if half(right_client, right_clock) or half(left_client, left_clock + 1):
                raise MalformedUpdate(
                    f"update: item {client}:{clock} typed between the two UTF-16 units of a"
                    " character"
                )
        for client, start, length in deleted:
            gone = self._deleted.get(client, ())
            # (a second unit at the range's edge, the unit of its character the range deletes,
            # the one it leaves): a cut unless the one left goes too, or the document has
            # deleted the range's unit already (the cut is in it: a repeated delete set)
            edges = (
                (start, start, start - 1),
                (start + length, start + length - 1, start + length),
            )
            for boundary, taken, left in edges:
                if (
                    half(client, boundary)
                    and taken not in gone
                    and left not in gone
                    and not _covers(deleted, client, left)
                ):
                    raise MalformedUpdate(
                        f"update: deleting {client}:{start}-{start + length - 1} cuts a"
                        " character in two"
                    )

    def record(self, summary: UpdateSummary) -> None:
        """Keep an applied update's astral characters, and which units of those the document
        has it deletes."""
        for client, clock in summary.halves:
            found = self._halves.get(client)
            if found is None:
                found = self._halves[client] = array("Q")
            if not found or clock > found[-1]:
                found.append(clock)
                continue
            at = bisect_left(found, clock)
            if found[at] != clock:  # clock <= found[-1]: at is inside the array
                found.insert(at, clock)
        for client, start, length in summary.deleted:
            found = self._halves.get(client)
            if not found:
                continue
            end = start + length
            inside = found[bisect_left(found, start) : bisect_right(found, end)]
            if not inside:
                continue
            gone = self._deleted.setdefault(client, set())
            for second in inside:  # start <= second <= end
                if second < end:
                    gone.add(second)
                if second - 1 >= start:
                    gone.add(second - 1)

    def _half(self, client: int, clock: int) -> bool:
        found = self._halves.get(client)
        if not found:
            return False
        at = bisect_left(found, clock)
        return at < len(found) and found[at] == clock


def _covers(deleted: Sequence[tuple[int, int, int]], client: int, clock: int) -> bool:
    return any(c == client and s <= clock < s + n for c, s, n in deleted)
