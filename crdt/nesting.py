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
cannot be placed yet: it counts as too deep, so a type in it is refused, and so is one nested
under it, until the item it refers to arrives (then it is placed; at most `MAX_WAITING` runs wait,
the others stay unplaced until the room loads again, which resolves the whole document at once)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence

from crdt.errors import MalformedUpdate
from crdt.update import GARBAGE, IN_ITEM, IN_ROOT, Run, check_update

_GAP = 255  # clocks of the client the room does not have
UNPLACED = 254  # items whose place is unknown: as deep as can be
_DEEPEST = 253  # depths are kept in one byte; deeper counts as this
MAX_WAITING = 10_000  # unplaced runs a room remembers, to place when what they refer to arrives

Resolved = list[tuple[Run, int]]  # each run of an update with its depth


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
            self._fill(clock, clock + length, depth, _GAP)
        # else: items the room has already (a repeated struct keeps its first place)

    def place(self, clock: int, length: int, depth: int) -> None:
        """Give `depth` to unplaced items in [clock, clock + length)."""
        self._fill(clock, clock + length, depth, UNPLACED)

    def _fill(self, clock: int, stop: int, depth: int, replaced: int) -> None:
        """Give `depth` to the clocks in [clock, stop) that are `replaced` (or that the room
        does not have yet, beyond `end`). Rare: a struct that arrived after a later one of its
        client, or after its neighbour."""
        bounds = [*self.starts, self.end]
        pieces: list[tuple[int, int]] = []
        for index, start in enumerate(self.starts):
            known, after = self.depths[index], bounds[index + 1]
            if known != replaced or after <= clock or start >= stop:
                pieces.append((start, known))
                continue
            if start < clock:
                pieces.append((start, replaced))
            pieces.append((max(start, clock), depth))
            if after > stop:
                pieces.append((stop, replaced))
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

    __slots__ = ("_clients", "_waiting", "_waiting_runs")

    def __init__(self) -> None:
        self._clients: dict[int, _Runs] = {}
        self._waiting: dict[int, list[Run]] = {}  # unplaced runs, by the client they refer to
        self._waiting_runs = 0

    @classmethod
    def of(cls, state: bytes) -> Nesting:
        """The nesting of a whole document (its state as one update)."""
        nesting = cls()
        nesting.record(check_update(state, logged=True).runs)
        return nesting

    def check(self, runs: Sequence[Run], max_depth: int) -> Resolved:
        """Place the runs of an update; MalformedUpdate if one holds a type deeper than
        `max_depth`. The result is for `record_resolved` once the update is applied."""
        resolved = self._resolve(runs)
        for run, depth in resolved:
            if run.has_type and depth + 1 > max_depth:
                if depth == UNPLACED:
                    raise MalformedUpdate("update: a shared type in an item the document lacks")
                raise MalformedUpdate(f"update: shared types nested deeper than {max_depth}")
        return resolved

    def record(self, runs: Sequence[Run]) -> None:
        """Place and keep the runs of an update that is in the document already (loaded, or
        logged by another node), however deep."""
        self.record_resolved(self._resolve(runs))

    def record_resolved(self, resolved: Resolved) -> None:
        for run, depth in resolved:
            runs = self._clients.get(run.client)
            if runs is None:
                runs = self._clients[run.client] = _Runs()
            runs.add(run.clock, run.length, depth)
            if depth == UNPLACED:
                self._wait(run)
        if self._waiting:
            self._place_waiting({run.client for run, _ in resolved})

    def _wait(self, run: Run) -> None:
        if self._waiting_runs < MAX_WAITING:
            self._waiting.setdefault(run.dep_client, []).append(run)
            self._waiting_runs += 1

    def _place_waiting(self, arrived: set[int]) -> None:
        """Place the waiting runs that refer to the clients whose items just arrived (or were
        just placed), and so on."""
        clients = [client for client in arrived if client in self._waiting]
        while clients:
            waiting = self._waiting.pop(clients.pop(), [])
            self._waiting_runs -= len(waiting)
            for run in waiting:
                base = self._known(run.dep_client, run.dep_clock)
                if base is None or base == UNPLACED:
                    self._wait(run)
                    continue
                self._clients[run.client].place(run.clock, run.length, _below(run, base))
                if run.client in self._waiting:
                    clients.append(run.client)

    def _known(self, client: int, clock: int) -> int | None:
        runs = self._clients.get(client)
        return None if runs is None else runs.depth(clock)

    def _resolve(self, runs: Sequence[Run]) -> Resolved:
        """Each run with its depth. Most updates (typing, setting a value) refer only to items
        the room has: those are placed here, without indexing the update's own runs."""
        clients = self._clients
        resolved: Resolved = []
        for run in runs:
            if run.place == IN_ROOT or run.place == GARBAGE:
                resolved.append((run, 1))
                continue
            known = clients.get(run.dep_client)
            base = None if known is None else known.depth(run.dep_clock)
            if base is None:
                return self._resolve_within(runs)
            resolved.append((run, UNPLACED if base == UNPLACED else _below(run, base)))
        return resolved

    def _resolve_within(self, runs: Sequence[Run]) -> Resolved:
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
            if depths[first] is not None:  # placed already, on the way to a later run
                continue
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
                    depth = UNPLACED if base == UNPLACED else _below(run, base)
                depths[index] = depth
                stack.pop()
        return [
            (run, depth if depth is not None else UNPLACED)
            for run, depth in zip(runs, depths, strict=True)
        ]


def _below(run: Run, depth: int) -> int:
    """The depth of `run`, whose parent or neighbour is in a type at `depth`."""
    if run.place == IN_ITEM:
        depth += 1
    return depth if depth < _DEEPEST else _DEEPEST
