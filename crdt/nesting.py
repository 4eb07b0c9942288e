"""Where every item of a room's document sits: in which shared type, and how deep that type is
nested. So an update nesting types deeper than `max_type_depth` is refused before it is applied
or logged, and so is an item typed between items of two different types.

Yjs clients walk nested types recursively (`toJSON()`, observers): 100,000 levels, which an
update of a few hundred kilobytes can carry, crash every client that loads the document.

Depth: a root type is at depth 1; a type held by an item sits one level below the type that
item is in. An update names an item's parent only when the item has no neighbour (the first item
of a type, or a map entry); otherwise the item is in its neighbour's type. So the room keeps,
for every item it has, the type the item is in (a place: a small number, for a root's name or
the id of the item holding the type, with that type's depth): per client, runs of consecutive
clocks in one place, in two arrays (an item typed after another by the same client sits beside
it, so typing makes one run). An update is resolved against those runs and its own structs (in
any order: an item may refer to one later in the same update), checked, and recorded once it
applied. Memory is a few bytes per run, a small object per client and an entry per type.

An item typed between two others (an origin and a right origin) is in their type, so both must
be in one. pycrdt breaks this when typing inside a character of several bytes that another
client typed, right before that client's item of another type, and Yjs and yrs integrate such
an item differently (the writer and a Yjs client showed lyrics `00\x80 a\n!` where a document
rebuilt from the log showed `!`): the room's read models and its clients would show different
lyrics for good. Such an update is refused. When that client has not typed anything after the
character yet, pycrdt names as the right origin the clock it will type next: an item typed
before the clock right after its origin's, which neither the document nor the update has, is
refused too (it would wait, and then sit wherever that client types next: in another type, the
same divergence). An honest Yjs client only names items it has, which came through the room;
one whose edit races its own sync step 2 after a node died holding what it names is closed
once, and its reconnection sends both together. Where one of the two items cannot be placed
otherwise (the room lacks it, or it was collected) nothing is checked: the document keeps the
item pending, or shows nothing of it.

An item whose neighbour or parent the room does not have (a struct the document keeps pending)
cannot be placed yet: it counts as too deep, so a type in it is refused, and so is one nested
under it, until the item it refers to arrives (then it is placed; at most `MAX_WAITING` runs wait,
the others stay unplaced until the room loads again, which resolves the whole document at once)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from crdt.characters import Characters
from crdt.errors import MalformedUpdate
from crdt.update import (
    BESIDE,
    GARBAGE,
    IN_ITEM,
    IN_ROOT,
    Between,
    Run,
    UpdateSummary,
    check_update,
)

_GAP = 0xFFFF_FFFF  # clocks of the client the room does not have
UNPLACED = 0xFFFF_FFFE  # items whose place is unknown: as deep as can be
COLLECTED = 0  # a collected range (its type was deleted): nothing in it is visible; depth 1
_DEEPEST = 253  # depths are kept in one byte; deeper counts as this
MAX_WAITING = 10_000  # unplaced runs a room remembers, to place when what they refer to arrives


class _Runs:
    """Places of one client's items: runs from `starts[i]` to the next start (or `end`)."""

    __slots__ = ("end", "places", "starts")

    def __init__(self) -> None:
        self.starts = array("Q")
        self.places = array("I")
        self.end = 0

    def place(self, clock: int) -> int | None:
        if clock >= self.end:
            return None
        place = self.places[bisect_right(self.starts, clock) - 1]
        return None if place == _GAP else place

    def add(self, clock: int, length: int, place: int) -> None:
        if clock > self.end:
            self.starts.append(self.end)
            self.places.append(_GAP)
            self.end = clock
        if clock == self.end:
            if not self.places or self.places[-1] != place:
                self.starts.append(clock)
                self.places.append(place)
            self.end = clock + length
        elif clock + length > self.end or _GAP in self.places:
            self._fill(clock, clock + length, place, _GAP)
        # else: items the room has already (a repeated struct keeps its first place)

    def settle(self, clock: int, length: int, place: int) -> None:
        """Give `place` to unplaced items in [clock, clock + length)."""
        self._fill(clock, clock + length, place, UNPLACED)

    def _fill(self, clock: int, stop: int, place: int, replaced: int) -> None:
        """Give `place` to the clocks in [clock, stop) that are `replaced` (or that the room
        does not have yet, beyond `end`). Rare: a struct that arrived after a later one of its
        client, or after its neighbour."""
        bounds = [*self.starts, self.end]
        pieces: list[tuple[int, int]] = []
        for index, start in enumerate(self.starts):
            known, after = self.places[index], bounds[index + 1]
            if known != replaced or after <= clock or start >= stop:
                pieces.append((start, known))
                continue
            if start < clock:
                pieces.append((start, replaced))
            pieces.append((max(start, clock), place))
            if after > stop:
                pieces.append((stop, replaced))
        if stop > self.end:
            pieces.append((max(self.end, clock), place))
            self.end = stop
        self.starts = array("Q")
        self.places = array("I")
        for start, known in pieces:
            if not self.places or self.places[-1] != known:
                self.starts.append(start)
                self.places.append(known)


class _Types:
    """The document's types: a place for each (its key: a root's name, or the id of the item
    holding the type) and its depth. Place `COLLECTED` is every collected range."""

    __slots__ = ("depths", "ids")

    def __init__(self) -> None:
        self.ids: dict[str | tuple[int, int], int] = {}
        self.depths = array("B", [1])


class _Placing:
    """The places of one update's runs: the document's types, and the types its items hold
    that the document has not seen yet, numbered after the document's (`first` on). Kept
    (`keep`) only once the update is recorded: a refused update leaves no type behind for a
    later one to be placed in."""

    __slots__ = ("first", "fresh", "new", "types")

    def __init__(self, types: _Types) -> None:
        self.types = types
        self.first = len(types.depths)
        self.new: list[tuple[str | tuple[int, int], int]] = []
        self.fresh: dict[str | tuple[int, int], int] = {}

    def depth(self, place: int) -> int:
        if place < self.first:
            return self.types.depths[place]
        return self.new[place - self.first][1]

    def below(self, run: Run, base: int) -> int:
        """The place of `run`, whose neighbour or parent is at place `base`."""
        if run.place != IN_ITEM:
            return base
        return self._type((run.dep_client, run.dep_clock), min(self.depth(base) + 1, _DEEPEST))

    def root(self, run: Run) -> int:
        return self._type(run.root, 1)

    def _type(self, key: str | tuple[int, int], depth: int) -> int:
        found = self.types.ids.get(key)
        if found is None:
            found = self.fresh.get(key)
        if found is None:
            found = self.first + len(self.new)
            self.new.append((key, depth))
            self.fresh[key] = found
        return found

    def current(self) -> bool:
        """Whether no other update's types were kept since this one was placed."""
        return self.first == len(self.types.depths)

    def keep(self) -> None:
        for key, depth in self.new:
            self.types.ids[key] = len(self.types.depths)
            self.types.depths.append(depth)
        self.new = []
        self.fresh = {}
        self.first = len(self.types.depths)


class Resolved(NamedTuple):
    """An update and its runs, each with its place, for `Nesting.record_resolved`; `placing`:
    the types they hold that the document lacks (None: they hold none, or only ones it has)."""

    summary: UpdateSummary
    places: list[tuple[Run, int]]
    placing: _Placing | None


class _Own:
    """The places of an update's own runs, by client and clock."""

    __slots__ = ("_runs",)

    def __init__(self, places: list[tuple[Run, int]]) -> None:
        self._runs: dict[int, tuple[list[int], list[tuple[Run, int]]]] = {}
        ordered = True  # an update lists each client's structs in clock order
        for each in places:
            starts, found = self._runs.setdefault(each[0].client, ([], []))
            if starts and each[0].clock < starts[-1]:
                ordered = False
            starts.append(each[0].clock)
            found.append(each)
        if not ordered:
            for client, (_, found) in self._runs.items():
                found.sort(key=lambda pair: pair[0].clock)
                self._runs[client] = ([run.clock for run, _ in found], found)

    def place(self, client: int, clock: int) -> int | None:
        starts, found = self._runs.get(client, ((), ()))
        at = bisect_right(starts, clock) - 1
        if at < 0:
            return None
        run, place = found[at]
        return place if clock < run.clock + run.length else None


class Nesting:
    """The place, and so the depth, of every item of one document."""

    __slots__ = ("_characters", "_clients", "_types", "_waiting", "_waiting_runs")

    def __init__(self) -> None:
        self._characters = Characters()
        self._clients: dict[int, _Runs] = {}
        self._types = _Types()
        self._waiting: dict[int, list[Run]] = {}  # unplaced runs, by the client they refer to
        self._waiting_runs = 0

    @classmethod
    def of(cls, state: bytes) -> Nesting:
        """The nesting of a whole document (its state as one update)."""
        nesting = cls()
        nesting.record(check_update(state, logged=True))
        return nesting

    def check(self, summary: UpdateSummary, max_depth: int) -> Resolved:
        """Place the runs of an update; MalformedUpdate if one holds a type deeper than
        `max_depth`, if an item is typed between items of two types (`summary.between`), or
        if the update cuts an astral character in two (crdt.characters). The result is for
        `record_resolved` once the update is applied."""
        resolved = self._resolve(summary)
        placing = resolved.placing
        for run, place in resolved.places:
            if not run.has_type:
                continue
            if place == UNPLACED:
                raise MalformedUpdate("update: a shared type in an item the document lacks")
            depth = self._types.depths[place] if placing is None else placing.depth(place)
            if depth + 1 > max_depth:
                raise MalformedUpdate(f"update: shared types nested deeper than {max_depth}")
        if summary.between:
            self._check_between(summary.between, resolved.places)
        if summary.between or summary.deleted:
            self._characters.check(summary, self._known)
        return resolved

    def record(self, summary: UpdateSummary) -> None:
        """Place and keep the runs of an update that is in the document already (loaded, or
        logged by another node), however deep, and its astral characters."""
        self.record_resolved(self._resolve(summary))

    def record_resolved(self, resolved: Resolved) -> None:
        placing, summary = resolved.placing, resolved.summary
        if placing is not None:
            if not placing.current():  # another update's types were kept in between
                self.record(summary)
                return
            placing.keep()
        if summary.halves or summary.deleted:
            self._characters.record(summary)
        for run, place in resolved.places:
            runs = self._clients.get(run.client)
            if runs is None:
                runs = self._clients[run.client] = _Runs()
            runs.add(run.clock, run.length, place)
            if place == UNPLACED:
                self._wait(run)
        if self._waiting:
            self._place_waiting({run.client for run, _ in resolved.places})

    def _check_between(self, between: Sequence[Between], places: list[tuple[Run, int]]) -> None:
        known = self._known
        own: _Own | None = None
        for client, clock, left_client, left_clock, right_client, right_clock in between:
            if known(client, clock) is not None:
                continue  # an item the document has already
            left = known(left_client, left_clock)
            right = known(right_client, right_clock)
            if left is None or right is None:  # in the update itself, or nowhere
                own = own or _Own(places)
                left = own.place(left_client, left_clock) if left is None else left
                right = own.place(right_client, right_clock) if right is None else right
            if (
                right is None
                and left is not None
                and right_client == left_client
                and right_clock == left_clock + 1
            ):
                raise MalformedUpdate(
                    f"update: item {client}:{clock} typed before {right_client}:{right_clock},"
                    " which no one has written"
                )
            if left in (None, UNPLACED, COLLECTED) or right in (None, UNPLACED, COLLECTED):
                continue
            if left != right:
                raise MalformedUpdate(
                    f"update: item {client}:{clock} typed between items of two different types"
                )

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
                placing = _Placing(self._types)
                place = placing.below(run, base)
                placing.keep()
                self._clients[run.client].settle(run.clock, run.length, place)
                if run.client in self._waiting:
                    clients.append(run.client)

    def _known(self, client: int, clock: int) -> int | None:
        runs = self._clients.get(client)
        return None if runs is None else runs.place(clock)

    def _resolve(self, summary: UpdateSummary) -> Resolved:
        """Each run with its place. Most updates (typing, setting a value) refer only to items
        the room has: those are placed here, without indexing the update's own runs."""
        clients, types = self._clients, self._types.ids
        placing: _Placing | None = None  # made for the first type the document lacks
        places: list[tuple[Run, int]] = []
        for run in summary.runs:
            where = run.place
            if where in (BESIDE, IN_ITEM):
                known = clients.get(run.dep_client)
                base = None if known is None else known.place(run.dep_clock)
                if base is None:
                    return self._resolve_within(summary)
                if where == BESIDE or base == UNPLACED:
                    places.append((run, base))
                    continue
                held = types.get((run.dep_client, run.dep_clock))
                if held is None:
                    placing = placing or _Placing(self._types)
                    held = placing.below(run, base)
                places.append((run, held))
            elif where == IN_ROOT:
                held = types.get(run.root)
                if held is None:
                    placing = placing or _Placing(self._types)
                    held = placing.root(run)
                places.append((run, held))
            else:
                places.append((run, COLLECTED))
        return Resolved(summary, places, placing)

    def _resolve_within(self, summary: UpdateSummary) -> Resolved:
        # This update's own runs, per client in clock order, for items that refer to others in
        # the same update (in any order, so depth-first with an explicit stack).
        runs = summary.runs
        placing = _Placing(self._types)
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

        places: list[int | None] = [None] * len(runs)
        visiting = bytearray(len(runs))
        for first in range(len(runs)):
            if places[first] is not None:  # placed already, on the way to a later run
                continue
            stack = [first]
            while stack:
                index = stack[-1]
                if places[index] is not None:
                    stack.pop()
                    continue
                run = runs[index]
                place: int | None
                if run.place == IN_ROOT:
                    place = placing.root(run)
                elif run.place == GARBAGE:
                    place = COLLECTED
                else:
                    base = self._known(run.dep_client, run.dep_clock)
                    if base is None:
                        other = own(run.dep_client, run.dep_clock)
                        if other is not None and places[other] is None and not visiting[other]:
                            visiting[index] = 1
                            stack.append(other)
                            continue
                        base = UNPLACED if other is None else places[other]
                        if base is None:  # a cycle, which no real update has
                            base = UNPLACED
                    place = UNPLACED if base == UNPLACED else placing.below(run, base)
                places[index] = place
                stack.pop()
        return Resolved(
            summary,
            [
                (run, place if place is not None else UNPLACED)
                for run, place in zip(runs, places, strict=True)
            ],
            placing,
        )
