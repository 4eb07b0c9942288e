"""How many characters each update types into one root text and deletes from it, counted from
the update's own structs rather than from the text.

yrs (like Yjs) computes a text's change delta, and renders a text as a string, by walking every
item of the text from its start, deleted ones included: lyrics typed and retyped over a long
project carry hundreds of thousands of deleted characters, and reading one keystroke's delta
then costs milliseconds (10 ms at 550,000; docs/benchmarks.md). An update says itself what it
typed (its string structs) and what it deleted (its delete set); what is missing is which of
those are in the text, and the characters a deleted range held. So this keeps, beside the
document:

- which clocks of each client are items of the text: an item typed beside another (its origin,
  else its right origin) is in that item's type, and only an item with neither names its parent
  (crdt/update.py), so an item is in the text if it names the text's root or is typed beside an
  item of the text (within the update, in any order: an item may be typed beside a later one);
- the text's characters that are not deleted, per client, as runs of UTF-16 units (Yjs clocks
  count those) by clock.

Typed: the characters of the update's strings in the text that its own delete set does not
delete at once. Deleted: the characters the delete set takes out of the text that were there
before. A document where that cannot be told (an update that refers to an item the document
does not have yet, or was typed before one, which yrs keeps pending; an embed or a type in the
text; an update that repeats part of what the document has) makes `count` answer None, for
good: the caller reads the text instead.
Memory: a few integers per run of the text's clocks and the text's visible characters."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NamedTuple

from crdt.errors import MalformedUpdate
from crdt.update import GARBAGE_KIND, TEXT_KINDS, Struct, delete_set, structs

_UNITS = "utf-16-le"


class Counted(NamedTuple):
    """What one update did to the text: characters typed and deleted (code points), and the
    same in UTF-8 bytes (what pycrdt's `len` of a text counts, to check against)."""

    typed: int
    deleted: int
    typed_bytes: int
    deleted_bytes: int


@dataclass(slots=True)
class _Client:
    """One client's items in the text: clock ranges [starts[i], ends[i]), and its characters
    not deleted as runs (clock, UTF-16 units) in clock order."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    run_clocks: list[int] = field(default_factory=list)
    runs: list[bytes] = field(default_factory=list)

    def holds(self, clock: int) -> bool:
        at = bisect_right(self.starts, clock) - 1
        return at >= 0 and clock < self.ends[at]

    def add(self, clock: int, length: int) -> None:
        at = bisect_right(self.starts, clock)
        if at and self.ends[at - 1] == clock:  # typed after its own last item: one range
            self.ends[at - 1] = clock + length
        else:
            self.starts.insert(at, clock)
            self.ends.insert(at, clock + length)

    def type(self, clock: int, units: bytes) -> None:
        at = bisect_right(self.run_clocks, clock)
        if at and self.run_clocks[at - 1] + len(self.runs[at - 1]) // 2 == clock:
            self.runs[at - 1] += units
        else:
            self.run_clocks.insert(at, clock)
            self.runs.insert(at, units)

    def delete(self, clock: int, length: int) -> list[bytes]:
        """Take the characters in [clock, clock + length) out of the runs; what they held."""
        taken: list[bytes] = []
        end = clock + length
        at = max(bisect_right(self.run_clocks, clock) - 1, 0)
        while at < len(self.runs) and self.run_clocks[at] < end:
            start, units = self.run_clocks[at], self.runs[at]
            stop = start + len(units) // 2
            if stop <= clock:
                at += 1
                continue
            cut_from, cut_to = max(clock, start) - start, min(end, stop) - start
            taken.append(units[2 * cut_from : 2 * cut_to])
            kept = [(start, units[: 2 * cut_from]), (start + cut_to, units[2 * cut_to :])]
            kept = [(c, u) for c, u in kept if u]
            self.run_clocks[at : at + 1] = [c for c, _ in kept]
            self.runs[at : at + 1] = [u for _, u in kept]
            at += len(kept)
        return taken


def _measure(chunks: list[bytes]) -> tuple[int, int]:
    """Characters and UTF-8 bytes of UTF-16 chunks."""
    text = "".join(chunk.decode(_UNITS, "surrogatepass") for chunk in chunks)
    return len(text), len(text.encode("utf-8", "surrogatepass"))


class TextCounts:
    """The items of the root text `root` in a document, kept update by update (`count` each
    update before it is applied, in the document's order)."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._clients: dict[int, _Client] = {}
        self._ends: dict[int, int] = {}  # by client: the clock after the document's items
        self._lost = False

    @classmethod
    def of(cls, state: bytes, root: str) -> TextCounts:
        """The counts of a document whose whole state is `state` (`Doc.get_update()`)."""
        counts = cls(root)
        counts.count(state)
        return counts

    def count(self, update: bytes) -> Counted | None:
        """What `update` types into the text and deletes from it; None when that cannot be told
        from the update (then never again: see the module's docstring). MalformedUpdate if
        `update` does not parse."""
        if self._lost:
            return None
        try:
            counted = self._count(update)
        except MalformedUpdate:
            self._lost = True
            raise
        if counted is None:
            self._lost = True
        return counted

    def _count(self, update: bytes) -> Counted | None:
        groups, at = structs(update)
        ends = dict(self._ends)
        mine: dict[tuple[int, int], Struct] = {}  # the update's items, by their first id
        for client, found in groups:
            first = next((s for s in found if not s.skip), None)
            if first is not None and first.clock > self._ends.get(client, 0):
                return None  # a gap: yrs keeps the update pending
            for struct in found:
                if struct.skip:
                    if struct.clock + struct.length > self._ends.get(client, 0):
                        return None  # what comes after it waits for the gap: pending
                    continue
                if struct.clock < self._ends.get(client, 0):
                    if struct.clock + struct.length > self._ends[client]:
                        return None  # part of it is known already
                    continue  # all of it is: yrs skips it
                mine[(client, struct.clock)] = struct
                ends[client] = max(ends.get(client, 0), struct.clock + struct.length)
        placed = self._place(mine, ends)
        if placed is None:
            return None
        typed_runs: dict[int, _Client] = {}
        for (client, clock), struct in placed:
            if struct.kind not in TEXT_KINDS:
                return None  # an embed (or a type) in the text: not a character
            self._clients.setdefault(client, _Client()).add(clock, struct.length)
            if struct.text is not None:
                typed = typed_runs.setdefault(client, _Client())
                typed.type(clock, struct.text.encode(_UNITS, "surrogatepass"))
        deletes = delete_set(update, at)
        if any(clock + size > ends.get(client, 0) for client, r in deletes for clock, size in r):
            return None  # deletes an item the document does not have yet: kept pending
        gone: list[bytes] = []
        for client, ranges in deletes:
            for clock, length in ranges:
                if client in typed_runs:  # typed and deleted by the same update: neither
                    typed_runs[client].delete(clock, length)
                if client in self._clients:
                    gone += self._clients[client].delete(clock, length)
        kept: list[bytes] = []
        for client, typed in typed_runs.items():
            own = self._clients[client]
            for clock, units in zip(typed.run_clocks, typed.runs, strict=True):
                own.type(clock, units)
                kept.append(units)
        self._ends = ends
        deleted, deleted_bytes = _measure(gone)
        typed_count, typed_bytes = _measure(kept)
        return Counted(typed_count, deleted, typed_bytes, deleted_bytes)

    def _place(
        self, mine: dict[tuple[int, int], Struct], ends: dict[int, int]
    ) -> list[tuple[tuple[int, int], Struct]] | None:
        """The update's items that are in the text, each placed by its parent or the item it
        was typed beside (which may come later in the update); None if one refers to an item
        the document does not have."""
        starts: dict[int, list[int]] = {}
        for client, clock in sorted(mine):
            starts.setdefault(client, []).append(clock)
        inside: dict[tuple[int, int], bool] = {}

        def mine_at(client: int, clock: int) -> tuple[int, int] | None:
            found = starts.get(client)
            if not found:
                return None
            at = bisect_right(found, clock) - 1
            if at < 0:
                return None
            key = (client, found[at])
            return key if clock < found[at] + mine[key].length else None

        def resolve(key: tuple[int, int]) -> bool | None:
            chain: dict[tuple[int, int], None] = {}
            verdict: bool | None = None
            while verdict is None:
                if key in inside:
                    verdict = inside[key]
                    break
                struct = mine[key]
                chain[key] = None
                if struct.kind == GARBAGE_KIND:
                    verdict = False
                elif struct.neighbour is None:
                    verdict = struct.parent == self._root
                else:
                    client, clock = struct.neighbour
                    own = mine_at(client, clock)
                    if own is not None and own not in chain:
                        key = own
                        continue
                    if own is not None or clock >= ends.get(client, 0):
                        return None  # a loop, or an item the document does not have
                    known = self._clients.get(client)
                    verdict = known is not None and known.holds(clock)
            for seen in chain:
                inside[seen] = verdict
            return verdict

        def in_text(item: tuple[int, int], own: tuple[int, int] | None) -> bool:
            """Whether `item`, one of the update's (`own`, its first id) or the document's, is
            an item of the text."""
            if own is not None:
                return bool(resolve(own))
            known = self._clients.get(item[0])
            return known is not None and known.holds(item[1])

        placed: list[tuple[tuple[int, int], Struct]] = []
        for key in sorted(mine):
            right = mine[key].right
            own = None if right is None else mine_at(*right)
            if right is not None and (
                own == key or (own is None and right[1] >= self._ends.get(right[0], 0))
            ):
                return None  # typed before itself, or before an item the document lacks
            verdict = resolve(key)
            if verdict is None:
                return None
            if verdict and right is not None and not in_text(right, own):
                # typed beside an item of the text and before one of another type (pycrdt,
                # typing inside a multi-byte character): yrs's text is then not the one these
                # counts keep
                return None
            if verdict:
                placed.append((key, mine[key]))
        return placed
