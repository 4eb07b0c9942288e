"""How deep the shared types of a room's document are nested, so that an update nesting them
deeper than `max_type_depth` is refused before it is applied or logged.

Yjs clients walk nested types recursively (`toJSON()`, observers): 100,000 levels, which an
update of a few hundred kilobytes can carry, crash every client that loads the document.

Depth: a root type is at depth 1; a type held by an item sits one level below the type that
item is in. An update names an item's parent only when the item has no neighbour (the first item
of a type, or a map entry); otherwise the item is in its neighbour's type. So the room keeps,
for every item it has, the depth of the type the item is in: per client, runs of consecutive
clocks at one depth, in two arrays (an item typed after another by the same client sits beside
it, so typing makes one run). An update is resolved against those runs and its own structs (in
any order: an item may refer to one later in the same update), checked, and recorded once it
applied. Memory is a few bytes per run and a small object per client.

An item whose neighbour or parent the room does not have (a struct the document keeps pending)
cannot be placed: it counts as too deep, so a type in it is refused and nothing can be nested
under it until the room is loaded again (loading resolves the whole document at once)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence

from jacameno.collab.errors import MalformedMessage
from jacameno.collab.update import GARBAGE, IN_ITEM, IN_ROOT, Run, check_update

_GAP = 255  # clocks of the client the room does not have
UNPLACED = 254  # items whose place is unknown: as deep as can be
_DEEPEST = 253  # depths are kept in one byte; deeper counts as this

Resolved = list[tuple[int, int, int, int]]  # (client, clock, length, depth)


class _Runs:
    """Depths of one client's items: runs from `starts[i]` to the next start (or `end`)."""

    __slots__ = ("depths", "end", "starts")

    def __init__(self) -> None:
        self.starts = array("Q")
        self.depths = array("B")
        self.end = 0

    def depth(self, clock: int) -> int | None:
        if clock >= self.end:
            return None
        depth = self.depths[bisect_right(self.starts, clock) - 1]
        return None if depth == _GAP else depth

    def add(self, clock: int, length: int, depth: int) -> None:
        if clock > self.end:
            self.starts.append(self.end)
            self.depths.append(_GAP)
            self.end = clock
        if clock == self.end:
            if not self.depths or self.depths[-1] != depth:
                self.starts.append(clock)
                self.depths.append(depth)
            self.end = clock + length
        elif clock + length > self.end or _GAP in self.depths:
            self._fill(clock, clock + length, depth)
        # else: items the room has already (a repeated struct keeps its first place)

    def _fill(self, clock: int, stop: int, depth: int) -> None:
        """Give `depth` to the clocks in [clock, stop) the room does not have yet (rare: a
        struct that arrived after a later one of its client)."""
        bounds = [*self.starts, self.end]
        pieces: list[tuple[int, int]] = []
        for index, start in enumerate(self.starts):
            known, after = self.depths[index], bounds[index + 1]
            if known != _GAP or after <= clock or start >= stop:
                pieces.append((start, known))
                continue
            if start < clock:
                pieces.append((start, _GAP))
            pieces.append((max(start, clock), depth))
            if after > stop:
                pieces.append((stop, _GAP))
        if stop > self.end:
            pieces.append((max(self.end, clock), depth))
            self.end = stop
        self.starts = array("Q")
        self.depths = array("B")
        for start, known in pieces:
            if not self.depths or self.depths[-1] != known:
                self.starts.append(start)
                self.depths.append(known)


class Nesting:
    """The depth of the type every item of one document is in."""

    __slots__ = ("_clients",)

    def __init__(self) -> None:
        self._clients: dict[int, _Runs] = {}

    @classmethod
    def of(cls, state: bytes) -> Nesting:
        """The nesting of a whole document (its state as one update)."""
        nesting = cls()
        nesting.record(check_update(state, logged=True).runs)
        return nesting

    def check(self, runs: Sequence[Run], max_depth: int) -> Resolved:
        """Place the runs of an update; MalformedMessage if one holds a type deeper than
        `max_depth`. The result is for `record_resolved` once the update is applied."""
        resolved = self._resolve(runs)
        for run, (_, _, _, depth) in zip(runs, resolved, strict=True):
            if run.has_type and depth + 1 > max_depth:
                if depth == UNPLACED:
                    raise MalformedMessage("update: a shared type in an item the document lacks")
                raise MalformedMessage(f"update: shared types nested deeper than {max_depth}")
        return resolved

    def record(self, runs: Sequence[Run]) -> None:
        """Place and keep the runs of an update that is in the document already (loaded, or
        logged by another node), however deep."""
        self.record_resolved(self._resolve(runs))

    def record_resolved(self, resolved: Resolved) -> None:
        for client, clock, length, depth in resolved:
            runs = self._clients.get(client)
            if runs is None:
                runs = self._clients[client] = _Runs()
            runs.add(clock, length, depth)

    def _known(self, client: int, clock: int) -> int | None:
        runs = self._clients.get(client)
        return None if runs is None else runs.depth(clock)

    def _resolve(self, runs: Sequence[Run]) -> Resolved:
        # This update's own runs, per client in clock order, for items that refer to others in
        # the same update (in any order, so depth-first with an explicit stack).
        starts: dict[int, list[int]] = {}
        indexes: dict[int, list[int]] = {}
        for index, run in enumerate(runs):
            starts.setdefault(run.client, []).append(run.clock)
            indexes.setdefault(run.client, []).append(index)

        def own(client: int, clock: int) -> int | None:
            found = starts.get(client)
            if found is None:
                return None
            at = bisect_right(found, clock) - 1
            if at < 0:
                return None
            index = indexes[client][at]
            run = runs[index]
            return index if clock < run.clock + run.length else None

        depths: list[int | None] = [None] * len(runs)
        visiting = bytearray(len(runs))
        for first in range(len(runs)):
            stack = [first]
            while stack:
                index = stack[-1]
                if depths[index] is not None:
                    stack.pop()
                    continue
                run = runs[index]
                depth: int | None
                if run.place in (IN_ROOT, GARBAGE):
                    depth = 1  # nothing in a collected range is visible: any depth will do
                else:
                    base = self._known(run.dep_client, run.dep_clock)
                    if base is None:
                        other = own(run.dep_client, run.dep_clock)
                        if other is not None and depths[other] is None and not visiting[other]:
                            visiting[index] = 1
                            stack.append(other)
                            continue
                        base = UNPLACED if other is None else depths[other]
                        if base is None:  # a cycle, which no real update has
                            base = UNPLACED
                    if base == UNPLACED:
                        depth = UNPLACED
                    else:
                        depth = min(base + 1 if run.place == IN_ITEM else base, _DEEPEST)
                depths[index] = depth
                stack.pop()
        return [
            (run.client, run.clock, run.length, depth if depth is not None else UNPLACED)
            for run, depth in zip(runs, depths, strict=True)
        ]
