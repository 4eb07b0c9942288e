"""Strict checks of Yjs v1 updates and state vectors, before pycrdt ever sees them.

pycrdt (yrs) must not be handed arbitrary bytes: deeply nested values overflow its stack and kill
the process, over-long clocks and client ids are silently truncated (the log would then show
another document than the sender's), and announced lengths are allocated before they are read.
So every update is walked here first, in Python, with bounds that Yjs itself respects:

- client ids < 2^53 (what JavaScript can hold); clocks and lengths so that clock + length < 2^32
  (yrs keeps clocks in 32 bits);
- every count no larger than the bytes left to read;
- nested values (lib0 `any`, JSON content) at most `MAX_DEPTH` deep; strings valid UTF-8, JSON
  content valid JSON;
- no lib0 BigInt values (`any` tag 122): pycrdt reads them back as floats, so a room's document
  (and every client that loads it later) would hold another number than the clients online when
  it was sent, with the same state vector; like the other integers beyond 2^53, they are refused;
- an item names only earlier items of its own client (as origin, right origin or parent): one
  that names itself or a later one stays pending in every other document for good, while its
  writer shows it (pycrdt writes such items when typing inside a multi-byte character);
- content kinds and type refs that Yjs 13 knows (no yrs-only Move or WeakLink);
- no trailing bytes.

Layout (UpdateEncoderV1): varuint(#clients) { varuint(#structs) varuint(client) varuint(clock)
{ struct } } delete set; delete set = varuint(#clients) { varuint(client) varuint(#ranges)
{ varuint(clock) varuint(len) } }."""

from __future__ import annotations

import json
from typing import NamedTuple

from crdt.encoding import Reader, write_var_uint
from crdt.errors import MalformedUpdate

MAX_CLOCK = 2**32 - 1
MAX_DEPTH = 64

_GC = 0
_DELETED = 1
_JSON = 2
_BINARY = 3
_STRING = 4
_EMBED = 5
_FORMAT = 6
_TYPE = 7
_ANY = 8
_DOC = 9
_SKIP = 10

_TYPE_REFS = range(7)  # Array, Map, Text, XmlElement, XmlFragment, XmlHook, XmlText
_TYPE_REF_XML_ELEMENT = 3
_TYPE_REF_XML_HOOK = 5

_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20


# Where an item sits (crdt.nesting): its parent is named only when it has no
# neighbour; otherwise it is in its neighbour's parent.
IN_ROOT = 0  # in a root type
IN_ITEM = 1  # in the type that item (dep_client, dep_clock) holds
BESIDE = 2  # beside item (dep_client, dep_clock): in the same type
GARBAGE = 3  # a collected range (its type was deleted): nothing in it is visible


class Run:
    """Consecutive structs of one client in one place: an item and the items typed after it,
    each with the previous one as its origin, share a parent. `has_type`: one of them holds a
    shared type."""

    __slots__ = (
        "client",
        "clock",
        "dep_client",
        "dep_clock",
        "has_type",
        "length",
        "place",
        "root",
    )

    def __init__(
        self,
        client: int,
        clock: int,
        length: int,
        place: int,
        dep_client: int,
        dep_clock: int,
        has_type: bool,
        root: str = "",
    ) -> None:
        self.client = client
        self.clock = clock
        self.length = length
        self.place = place
        self.dep_client = dep_client
        self.dep_clock = dep_clock
        self.has_type = has_type
        self.root = root  # IN_ROOT: the root type's name


Between = tuple[int, int, int, int, int, int]  # an item, its origin, its right origin


class UpdateSummary(NamedTuple):
    """What a valid update touches: the clients whose structs it carries, how many structs and
    deleted ranges, and where its structs sit (runs). A named tuple: one is built per update,
    at a third of a frozen dataclass's cost."""

    clients: tuple[int, ...]
    structs: int
    deletions: int
    ends: tuple[tuple[int, int], ...] = ()  # (client, clock after its last struct or deletion)
    runs: tuple[Run, ...] = ()
    # Items typed between two others, which must be in one type (crdt.nesting): (client, clock,
    # origin client, origin clock, right origin client, right origin clock); none for a logged
    # update.
    between: tuple[Between, ...] = ()
    # The ids of the second UTF-16 units of the astral characters (emoji) in the update's
    # strings, which nothing may cut from the first (crdt.nesting); and its deleted ranges
    # (client, clock, length).
    halves: tuple[tuple[int, int], ...] = ()
    deleted: tuple[tuple[int, int, int], ...] = ()

    @property
    def empty(self) -> bool:
        return self.structs == 0 and self.deletions == 0


def check_update(update: bytes, *, logged: bool = False) -> UpdateSummary:
    """The summary of a well-formed v1 update; MalformedUpdate otherwise. `logged`: the update
    is in the log already (or the whole document), where BigInts and items naming their own
    client's later ones, logged before they were refused, may remain: they are let through."""
    reader = Reader(update, "update")
    clients: list[int] = []
    ends: dict[int, int] = {}
    runs: list[Run] = []
    between: list[Between] | None = None if logged else []
    halves: list[tuple[int, int]] = []
    structs = 0
    for _ in range(reader.count(1)):
        count = reader.count(1)
        client, clock = reader.id(MAX_CLOCK)  # of the first struct
        clock = _structs(reader, client, clock, count, between, runs, halves)
        clients.append(client)
        structs += count
        ends[client] = max(ends.get(client, 0), clock)
    deleted: list[tuple[int, int, int]] = []
    _delete_set(reader, ends, deleted)
    reader.end()
    return UpdateSummary(
        tuple(clients),
        structs,
        len(deleted),
        tuple(ends.items()),
        tuple(runs),
        tuple(between) if between else (),
        tuple(halves),
        tuple(deleted),
    )


class Struct(NamedTuple):
    """One struct of an update: its bytes (`start` to `end`), its first clock and its length as
    yrs counts them (a string's length in UTF-16 units), and whether it is a skip (a gap that
    holds nothing). An item also says what it holds (`kind`: the content ref, GARBAGE_KIND for a
    collected range), the item it was typed beside (`neighbour`: its origin, else its right
    origin; it is in that item's type), else its `parent` (a root's name or the id of the item
    holding the type), a string's `text`, and the item it was typed before (`right`: its right
    origin, if any, which must be in the document before the item can be)."""

    start: int
    end: int
    clock: int
    length: int
    skip: bool
    kind: int = -1
    neighbour: tuple[int, int] | None = None
    parent: str | tuple[int, int] | None = None
    text: str | None = None
    right: tuple[int, int] | None = None


GARBAGE_KIND = _GC
# What a text's own items hold: characters, formatting marks, and deleted content.
TEXT_KINDS = frozenset((_STRING, _FORMAT, _DELETED))


def structs(update: bytes) -> tuple[list[tuple[int, list[Struct]]], int]:
    """Each client's structs in `update` as (client, structs) in the update's order, and the
    byte offset of its delete set. For an update that `check_update` passed; MalformedUpdate
    otherwise."""
    reader = Reader(update, "update")
    groups: list[tuple[int, list[Struct]]] = []
    for _ in range(reader.count(1)):
        count = reader.count(1)
        client, clock = reader.id(MAX_CLOCK)
        found: list[Struct] = []
        for _ in range(count):
            start = reader.pos
            info = reader.uint8()
            ref = info & 0x1F
            if ref in (_GC, _SKIP):
                length = _length(reader)
                found.append(Struct(start, reader.pos, clock, length, ref == _SKIP, ref))
                clock += length
                continue
            neighbour: tuple[int, int] | None = None
            right: tuple[int, int] | None = None
            parent: str | tuple[int, int] | None = None
            if info & _HAS_ORIGIN:
                neighbour = reader.id(MAX_CLOCK)
            if info & _HAS_RIGHT_ORIGIN:
                right = reader.id(MAX_CLOCK)
                neighbour = neighbour or right
            if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
                parent_is_root = reader.var_uint()
                if parent_is_root == 1:
                    parent = reader.var_string()
                elif parent_is_root == 0:
                    parent = reader.id(MAX_CLOCK)
                else:
                    raise reader.fail(f"bad parent info {parent_is_root}")
                if info & _HAS_PARENT_SUB:
                    reader.skip_var_string()
            text = None
            if ref == _STRING:
                text = reader.var_string()
                length = len(text.encode("utf-16-le", "surrogatepass")) // 2
            else:
                length = _content(reader, ref, True)
            found.append(
                Struct(start, reader.pos, clock, length, False, ref, neighbour, parent, text, right)
            )
            clock += length
        groups.append((client, found))
    return groups, reader.pos


def halves(update: bytes) -> set[tuple[int, int]]:
    """The ids that fall between the two UTF-16 units of one character of the update's strings
    (an astral one, such as an emoji): a deleted range cut there would leave half a character,
    which yrs mangles (`UpdateSummary.halves`). For an update that `check_update` passed;
    MalformedUpdate otherwise."""
    return set(check_update(update, logged=True).halves)


def struct_ends(update: bytes) -> dict[int, int]:
    """By client, the clock after the update's last struct (a string's length in UTF-16 units),
    where `check_update`'s ends count its deleted ranges too (blame checks with it that an
    update landed whole, projections/blame.py). For an update that `check_update` passed;
    MalformedUpdate otherwise."""
    return ends_of(structs(update)[0])


def ends_of(groups: list[tuple[int, list[Struct]]]) -> dict[int, int]:
    """`struct_ends` of an update's `structs`."""
    ends: dict[int, int] = {}
    for client, found in groups:
        held = [struct for struct in found if not struct.skip]  # a skip holds nothing
        if held:
            ends[client] = max(ends.get(client, 0), held[-1].clock + held[-1].length)
    return ends


def delete_set(update: bytes, at: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """The delete set of `update` that starts at byte `at` (as `structs` gives it): each
    client's deleted (clock, length) ranges. MalformedUpdate if it does not read to the end."""
    reader = Reader(update, "update")
    reader.pos = at
    clients: list[tuple[int, list[tuple[int, int]]]] = []
    for _ in range(reader.count(2)):
        client = reader.var_uint()
        ranges = [
            (reader.var_uint(MAX_CLOCK), reader.var_uint(MAX_CLOCK)) for _ in range(reader.count(2))
        ]
        clients.append((client, ranges))
    reader.end()
    return clients


def check_state_vector(state_vector: bytes) -> dict[int, int]:
    """The decoded state vector (client -> clock); MalformedUpdate if it is not one."""
    reader = Reader(state_vector, "state vector")
    result: dict[int, int] = {}
    for _ in range(reader.count(2)):
        client = reader.var_uint()
        result[client] = reader.var_uint(MAX_CLOCK)
    reader.end()
    return result


def encode_state_vector(clocks: dict[int, int]) -> bytes:
    """A state vector (client -> next clock) in Yjs's encoding, clients in ascending order."""
    parts = [write_var_uint(len(clocks))]
    for client in sorted(clocks):
        parts += (write_var_uint(client), write_var_uint(clocks[client]))
    return b"".join(parts)


def merged_state(*clocks: dict[int, int]) -> dict[int, int]:
    """The state of whoever holds all of `clocks`: each client's highest clock."""
    merged: dict[int, int] = {}
    for each in clocks:
        for client, clock in each.items():
            if clock > merged.get(client, -1):
                merged[client] = clock
    return merged


def _delete_set(reader: Reader, ends: dict[int, int], deleted: list[tuple[int, int, int]]) -> None:
    for _ in range(reader.count(2)):
        client = reader.var_uint()
        for _ in range(reader.count(2)):
            clock = reader.var_uint(MAX_CLOCK)
            length = reader.var_uint(MAX_CLOCK)
            if clock + length > MAX_CLOCK + 1:
                raise reader.fail("deleted range passes 2^32")
            ends[client] = max(ends.get(client, 0), clock + length)
            deleted.append((client, clock, length))


def _structs(
    reader: Reader,
    client: int,
    clock: int,
    count: int,
    between: list[Between] | None,
    runs: list[Run],
    halves: list[tuple[int, int]],
) -> int:
    """Check `count` structs of `client` from `clock` on, add their runs to `runs` and the items
    typed between two others to `between` (None: a logged update, checked less), and return
    the clock after them. An item is in the place its origin (else its right origin) is in;
    only an item with neither names its parent. One loop, few calls: every update runs it."""
    logged = between is None
    last: Run | None = None
    for _ in range(count):
        info = reader.uint8()
        ref = info & 0x1F
        if ref in (_GC, _SKIP):
            length = _length(reader)
            if ref == _GC:
                last = Run(client, clock, length, GARBAGE, 0, 0, False)
                runs.append(last)
            else:
                last = None
        else:
            place, dep_client, dep_clock, root = BESIDE, 0, 0, ""
            if info & _HAS_ORIGIN:
                dep_client, dep_clock = reader.id(MAX_CLOCK)
                if info & _HAS_RIGHT_ORIGIN:
                    right_client, right_clock = reader.id(MAX_CLOCK)
                    if between is not None:
                        if _not_before(right_client, right_clock, client, clock):
                            raise reader.fail(f"item {client}:{clock} typed before itself")
                        between.append(
                            (client, clock, dep_client, dep_clock, right_client, right_clock)
                        )
            elif info & _HAS_RIGHT_ORIGIN:
                dep_client, dep_clock = reader.id(MAX_CLOCK)
            else:
                parent_is_root = reader.var_uint()
                if parent_is_root == 1:
                    root = reader.var_string()
                    place = IN_ROOT
                elif parent_is_root == 0:
                    place = IN_ITEM
                    dep_client, dep_clock = reader.id(MAX_CLOCK)
                else:
                    raise reader.fail(f"bad parent info {parent_is_root}")
                if info & _HAS_PARENT_SUB:
                    reader.skip_var_string()
            if (
                not logged
                and place != IN_ROOT
                and _not_before(dep_client, dep_clock, client, clock)
            ):
                raise reader.fail(f"item {client}:{clock} names itself or a later item")
            if ref == _STRING:
                # Clocks advance by UTF-16 units: counted by UTF-8 bytes, the update's later
                # structs would sit at clocks they do not have, and `crdt.nesting` would read
                # their depths off other items (a chain of types nested past the limit after a
                # few emoji passed).
                length, astral = reader.string_units()
                if length == 0:
                    raise reader.fail("empty string content")
                if astral is not None:
                    _halves(client, clock, astral, halves)
            else:
                length = _content(reader, ref, logged)
            if (
                last is not None
                and place == BESIDE
                and dep_clock == clock - 1
                and dep_client == client
                and last.clock + last.length == clock
            ):
                last.length += length
                last.has_type = last.has_type or ref == _TYPE
            else:
                last = Run(client, clock, length, place, dep_client, dep_clock, ref == _TYPE, root)
                runs.append(last)
        clock += length
        if clock > MAX_CLOCK:
            raise reader.fail(f"clock of client {client} passes 2^32")
    return clock


def _halves(client: int, clock: int, text: str, halves: list[tuple[int, int]]) -> None:
    """Add the ids of the second UTF-16 units of `text`'s astral characters, the string being
    `client`'s from `clock` on."""
    for character in text:
        if character > "\uffff":
            halves.append((client, clock + 1))
            clock += 2
        else:
            clock += 1


def _not_before(named_client: int, named_clock: int, client: int, clock: int) -> bool:
    """Whether the item `named_client`:`named_clock` that item `client`:`clock` names (as origin,
    right origin or parent) is that item itself or a later one of its client. A client's items
    only ever name its earlier ones: every other document would keep such an item pending for
    good (pycrdt writes one when typing inside a multi-byte character, crdt/textcount.py)."""
    return named_client == client and named_clock >= clock


def _length(reader: Reader) -> int:
    length = reader.var_uint(MAX_CLOCK)
    if length == 0:
        raise reader.fail("struct of length 0")
    return length


def _content(reader: Reader, ref: int, logged: bool) -> int:
    if ref == _DELETED:
        return _length(reader)
    if ref == _ANY:
        count = reader.count(1)
        if count == 0:
            raise reader.fail("empty content")
        for _ in range(count):
            _any(reader, 0, logged)
        return count
    if ref == _JSON:
        count = reader.count(1)
        if count == 0:
            raise reader.fail("empty content")
        for _ in range(count):
            text = reader.var_string()
            if text != "undefined":
                _json(reader, text)
        return count
    if ref == _BINARY:
        reader.var_bytes()
        return 1
    if ref == _EMBED:
        _json(reader, reader.var_string())
        return 1
    if ref == _FORMAT:
        reader.skip_var_string()
        _json(reader, reader.var_string())
        return 1
    if ref == _TYPE:
        type_ref = reader.var_uint()
        if type_ref not in _TYPE_REFS:
            raise reader.fail(f"unknown type ref {type_ref}")
        if type_ref in (_TYPE_REF_XML_ELEMENT, _TYPE_REF_XML_HOOK):
            reader.skip_var_string()
        return 1
    if ref == _DOC:
        reader.skip_var_string()
        _any(reader, 0, logged)
        return 1
    raise reader.fail(f"unknown content kind {ref}")


def _any(reader: Reader, depth: int, logged: bool) -> None:
    """lib0 `readAny`: 127 undefined, 126 null, 125 varint, 124 float32, 123 float64, 122 bigint,
    121 false, 120 true, 119 string, 118 object, 117 array, 116 bytes."""
    if depth > MAX_DEPTH:
        raise reader.fail(f"values nested deeper than {MAX_DEPTH}")
    tag = reader.uint8()
    if tag in (127, 126, 121, 120):
        return
    if tag == 125:
        reader.var_int()
    elif tag == 124:
        reader.skip(4)
    elif tag == 123:
        reader.skip(8)
    elif tag == 122:
        if not logged:
            raise reader.fail("BigInt values are not supported")
        reader.skip(8)
    elif tag == 119:
        reader.skip_var_string()
    elif tag == 118:
        for _ in range(reader.count(2)):
            reader.skip_var_string()
            _any(reader, depth + 1, logged)
    elif tag == 117:
        for _ in range(reader.count(1)):
            _any(reader, depth + 1, logged)
    elif tag == 116:
        reader.var_bytes()
    else:
        raise reader.fail(f"unknown value tag {tag}")


def _json(reader: Reader, text: str) -> None:
    check_json(text, reader.what)


def check_json(text: str, what: str) -> object:
    """Parse `text` as JSON no deeper than MAX_DEPTH; MalformedUpdate otherwise."""
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(text, what)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedUpdate(f"{what}: invalid JSON") from exc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # JavaScript's JSON.parse refuses NaN and Infinity


def _check_depth(text: str, what: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, on the raw text (json.loads recurses)."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedUpdate(f"{what}: JSON nested deeper than {MAX_DEPTH}")
        elif char in "]}":
            depth -= 1
