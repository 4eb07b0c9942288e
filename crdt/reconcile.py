"""Make a shared type's content equal to another's by editing it as a collaborator would: delete
what the target lacks, insert what it adds, and keep every item whose content is already equal,
so that the edit is small and merges with concurrent edits of what it keeps.

- Map: keys the target lacks are deleted; a key whose value differs is set again, except when
  both values are Maps, Arrays or Texts, which are reconciled in place (recursively).
- Array: items are matched in order (a longest matching subsequence, difflib): a Map item by its
  `identity` key (e.g. a track's "id") when it has one, otherwise any item by its content. Matched
  Maps are reconciled in place; the others are deleted or inserted as copies. Where that would
  insert so many items so far from the start that the inserts' walks pass ARRAY_WALK_ITEMS,
  the array is refilled whole with copies instead (nothing kept).
- Text: the characters the target lacks are deleted and its new ones inserted (crdt.textdiff:
  by lines, then by characters; coarsened on long texts, see TEXT_WALK_BYTES); formatting
  attributes and embeds are not carried over (the target's plain string is).

Inserted values are copies of the target's (new Yjs items, new Maps, Arrays and Texts): content
equal, item ids new. XML types are not supported (UnsupportedContent).

Reading an Array's items one by one walks it from its start each time (pycrdt binds no
iterator: `Array[i]` is O(i)), so listing 46,000 comments takes minutes. `reconcile_roots`
lists the root Arrays of both documents in one pass each: it decodes each into a fresh
document whose root observers receive every item at once, edits that copy of the current
document, and applies the difference to the current document. Nested Arrays (a track's
clips) are read item by item."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Hashable, Mapping
from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt.errors import MalformedUpdate
from crdt.textdiff import coarsened, opcodes

# A text's edit is coarsened (crdt.textdiff.coarsened) to at most TEXT_WALK_BYTES // its size
# changes, and never fewer than MIN_TEXT_CHANGES: lyrics of 3,000 characters keep every change of
# a character diff; lyrics of 500,000 (typed one key per item) about 80.
TEXT_WALK_BYTES = 40_000_000
MIN_TEXT_CHANGES = 16
# An Array's items inserted, each weighed by its index (the walk to it): past this, the array is
# refilled whole instead (about 3 s of walking; 18,000 comments put back at the end of 32,000
# weigh 576,000,000).
ARRAY_WALK_ITEMS = 20_000_000

Shared = Map[Any] | Array[Any] | Text


class UnsupportedContent(MalformedUpdate):
    """The target holds a shared type that cannot be copied (an XML type)."""


def reconcile(current: Shared, target: Shared | str, identity: str = "id") -> None:
    """Edit `current` so that its content equals `target`'s (a shared type of the same kind, or
    a plain string for a Text). TypeError if the kinds differ."""
    if isinstance(current, Map) and isinstance(target, Map):
        _map(current, target, identity)
    elif isinstance(current, Array) and isinstance(target, Array):
        _array(current, target, identity)
    elif isinstance(current, Text) and isinstance(target, Text | str):
        _text(current, str(target))
    else:
        raise TypeError(f"cannot reconcile a {type(current).__name__} with {type(target).__name__}")


def reconcile_roots(
    current: Doc[Any], target: Doc[Any], roots: Mapping[str, type[Shared]], identity: str = "id"
) -> None:
    """Edit `current` so that each of `roots` (name -> Map, Array or Text) equals `target`'s,
    reading each root Array's items in one pass (see the module's docstring)."""
    mine, present = _listed(current.get_update(), roots)
    theirs, wanted = _listed(target.get_update(), roots)
    # One transaction: yrs's commit of each of thousands of edits of a large document would
    # cost more than the edits.
    with mine.transaction():
        for name, kind in roots.items():
            here, there = mine.get(name, type=kind), theirs.get(name, type=kind)
            if isinstance(here, Array) and isinstance(there, Array):
                _array(here, there, identity, present[name], wanted[name])
            else:
                reconcile(here, there, identity)
    current.apply_update(mine.get_update(current.get_state()))


def _listed(
    state: bytes, roots: Mapping[str, type[Shared]]
) -> tuple[Doc[Any], dict[str, list[Any]]]:
    """A new document holding `state`, and the items of each of its root Arrays in `roots`,
    as the roots' observers receive them when `state` is applied (one insert each); read item
    by item if that fails (a root that holds another type, say)."""
    # A scratch copy, edited only to compute the edit: no garbage collection (crdt.document.build)
    doc: Doc[Any] = Doc(skip_gc=True)
    items: dict[str, list[Any]] = {}
    watched = []
    for name, kind in roots.items():
        if kind is Array:
            array = doc.get(name, type=Array)
            watched.append((array, array.observe(functools.partial(_seen, items, name))))
    try:
        doc.apply_update(state)
    except BaseException:  # an observer yrs could not serve: read without them
        doc, items = Doc(skip_gc=True), {}
        doc.apply_update(state)
    for array, subscription in watched:
        array.unobserve(subscription)
    for name, kind in roots.items():
        # A fresh document's roots get one insert each; anything else is read item by item.
        if kind is Array:
            array = doc.get(name, type=Array)
            if name not in items or len(items[name]) != len(array):
                items[name] = list(array)
    return doc, items


def _seen(items: dict[str, list[Any]], name: str, event: Any) -> None:
    try:
        listing = items.setdefault(name, [])
        for change in event.delta:
            listing.extend(change.get("insert", ()))
    except BaseException:  # never into yrs: the root is read item by item instead
        items.pop(name, None)


def clear(current: Shared) -> None:
    """Delete all of `current`'s content."""
    if isinstance(current, Map):
        for key in list(current.keys()):
            del current[key]
    else:
        del current[0 : len(current)]


def copy(value: Any) -> Any:
    """A preliminary copy of `value` (shared types copied deeply; plain values as they are),
    ready to be inserted into another document."""
    if isinstance(value, Map):
        return Map({key: copy(item) for key, item in value.items()})
    if isinstance(value, Array):
        return Array([copy(item) for item in value])
    if isinstance(value, Text):
        return Text(str(value))
    if _is_shared(value):
        raise UnsupportedContent(f"cannot copy a {type(value).__name__}")
    return value


def _is_shared(value: Any) -> bool:
    return type(value).__module__.startswith("pycrdt")


def _same_kind(a: Any, b: Any) -> bool:
    return isinstance(a, Map | Array | Text) and type(a) is type(b)


def _map(current: Map[Any], target: Map[Any], identity: str) -> None:
    wanted = dict(target.items())
    for key in [k for k in list(current.keys()) if k not in wanted]:
        del current[key]
    for key, value in wanted.items():
        if key not in current:
            current[key] = copy(value)
            continue
        present = current[key]
        if _same_kind(present, value):
            reconcile(present, value, identity)
        elif _is_shared(present) or _is_shared(value) or not _equal(present, value):
            current[key] = copy(value)


def _equal(a: Any, b: Any) -> bool:
    """Plain values equal as JSON (so that True is not 1.0, and 1.0 is 1)."""
    return _plain_key(a) == _plain_key(b)


def _plain_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _item_key(item: Any, identity: str) -> Hashable:
    if isinstance(item, Map):
        key = item.get(identity)
        if isinstance(key, str | int | float) and not isinstance(key, bool):
            return ("map", _plain_key(key))
        return ("map-content", _plain_key(item.to_py()))
    if isinstance(item, Array | Text):
        return (type(item).__name__, _plain_key(item.to_py()))
    if _is_shared(item):
        return ("other", id(item))  # never equal to anything: replaced by a copy (or refused)
    return ("value", _plain_key(item))


def _array(
    current: Array[Any],
    target: Array[Any],
    identity: str,
    present: list[Any] | None = None,
    wanted: list[Any] | None = None,
) -> None:
    """`present` and `wanted`: the items of `current` and `target` if already listed."""
    present = list(current) if present is None else present
    wanted = list(target) if wanted is None else wanted
    matcher = difflib.SequenceMatcher(
        None,
        [_item_key(i, identity) for i in present],
        [_item_key(i, identity) for i in wanted],
        autojunk=False,
    )
    opcodes = matcher.get_opcodes()
    # Each insert at an index walks the array from its start (about 140 ns per item on the
    # way): thousands of items put back near the end of a long array would take minutes, so
    # past a budget the array is emptied and refilled at index 0, which walks nothing.
    walks = sum((j2 - j1) * i1 for tag, i1, _, j1, j2 in opcodes if tag in ("insert", "replace"))
    if walks > ARRAY_WALK_ITEMS:
        _refill(current, wanted)
        return
    # Both rendered in one call each: a matched Map equal as JSON needs nothing done inside,
    # which spares reading thousands of unchanged comments or clips key by key.
    rendered_present, rendered_wanted = json.loads(str(current)), json.loads(str(target))
    # From the end, so that the indices of what is still to do do not move.
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                mine, theirs = present[i], wanted[j]
                if (
                    isinstance(mine, Map)
                    and isinstance(theirs, Map)
                    and not _equal(rendered_present[i], rendered_wanted[j])
                ):
                    _map(mine, theirs, identity)
            continue
        if i2 > i1:
            del current[i1:i2]
        for offset, item in enumerate(wanted[j1:j2]):
            current.insert(i1 + offset, copy(item))


def _refill(current: Array[Any], wanted: list[Any]) -> None:
    """Replace all of `current`'s items by copies of `wanted`, inserted at index 0 from the last
    one, before the old ones are deleted: an insert at 0 walks past the deleted items at the
    start of the array (10 ms past 70,000 of them), and none but the first has any."""
    old = len(current)
    for item in reversed(wanted):
        current.insert(0, copy(item))
    del current[len(wanted) : len(wanted) + old]


def _text(current: Text, wanted: str) -> None:
    present = str(current)
    if present == wanted:
        return
    # Each change walks the Y.Text from its start (crdt.textdiff): at most about
    # TEXT_WALK_BYTES bytes walked in all, whatever the text's size.
    size = max(1, len(present.encode()))
    limit = max(MIN_TEXT_CHANGES, TEXT_WALK_BYTES // size)
    found = coarsened(opcodes(present, wanted), limit)
    # pycrdt's Text indices are UTF-8 byte offsets: found once, in text order.
    offsets, at, done = [], 0, 0
    for _, i1, i2, _, _ in found:
        at += len(present[done:i1].encode())
        start = at
        at += len(present[i1:i2].encode())
        offsets.append((start, at))
        done = i2
    for (tag, _, _, j1, j2), (start, end) in zip(reversed(found), reversed(offsets), strict=True):
        if tag == "equal":
            continue
        if end > start:
            del current[start:end]
        if j2 > j1:
            current.insert(start, wanted[j1:j2])
