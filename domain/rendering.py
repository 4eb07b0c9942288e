"""A document with its plain rendering (`domain.document.plain`) kept up to date update by update,
for what compares the renderings on either side of each update (history's summaries,
domain.changes): re-rendering a long project whole after every update costs tens of
milliseconds (a studio project of 100,000 updates: 46,000 characters of lyrics and 3,800 clips
render in 29 ms), while an update usually touches one track, one text or one setting.

Which parts an update touched comes from pycrdt's observers of the schema's roots: an event
inside an item of an Array root (its path starts with the item's index: a track, a comment)
re-renders that item, items inserted into or deleted from the root are spliced into its
rendering as the root's delta says, the lyrics are kept as UTF-8 patched by the text's deltas,
and any other event of a root re-renders the root. A root outside the schema (a studio document
has none; clients and tools add their own) is observed once it holds a map: its changed keys
are rendered again and the rest kept; any other such root (a text, an array, one that holds
nothing yet) is rendered whole after every update. The
untouched parts of the next rendering are the very objects of the previous one, so comparing
the two skips them by identity. A rendering that may have missed an update (`stale`), and every
256th, is rendered whole.

What an update typed into the lyrics and deleted from them (`lyrics`) is counted from the text's
deltas as they are applied. A long-lived rendering (`counted=True`: the document read model's
fold) counts it from the update's own structs instead (crdt.textcount) and reads no delta: yrs
computes a text's delta by walking every item of the text, deleted ones included, which costs
milliseconds per keystroke on lyrics retyped over a long project; its `value`'s lyrics are then
read from the document when `value` is read, and the renderings `apply` returns may hold older
lyrics (use `changed` for what an update changed)."""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt import MalformedUpdate, apply
from crdt.delta import replay
from crdt.textcount import TextCounts
from domain.changes import Change, changes
from domain.document import SCHEMA_ROOTS, plain, plain_root, root_value

_log = logging.getLogger(__name__)

LYRICS = "lyrics"
WHOLE = -1  # in `_touched`: the root is rendered whole
# Every this many updates the document is rendered whole: whatever an update did that the
# observers did not say (yrs gave no event for the insert of an embed inside a multi-byte
# character, a position no client should send) is caught up with.
WHOLE_EVERY = 256


class Rendering:
    """`doc` and `value`, its plain rendering, as of the last `apply` (or of construction), and
    `lyrics`: the characters the last update typed into the lyrics and deleted from them (None
    when they were not counted: compare the renderings' lyrics)."""

    def __init__(self, doc: Doc[Any], *, counted: bool = False) -> None:
        self.doc = doc
        self._value = plain(doc)
        self.stale = False
        self.lyrics: tuple[int, int] | None = None
        self._counts = TextCounts.of(doc.get_update(), LYRICS) if counted else None
        self._length = len(doc.get(LYRICS, type=Text))  # in UTF-8 bytes, as pycrdt counts
        self._behind = False  # `_value`'s lyrics lag the document's (counted)
        self._typed = self._deleted = 0  # by the update's deltas; -1: not counted
        self._applied = 0
        self._others = [name for name in self._value if name not in SCHEMA_ROOTS]
        self._touched: dict[str, set[int]] = {}
        # The lyrics as UTF-8, kept from the text's change deltas (whose positions count bytes):
        # `str()` of a Y.Text walks every item, a millisecond for lyrics of 46,000 characters
        # typed one by one, too much per keystroke. None while the text holds an embed (its
        # position then spells nothing in the string): rendered whole.
        self._lyrics = _utf8(doc.get(LYRICS, type=Text))
        self._deltas: dict[str, list[Any]] = {}  # by root: the update's change deltas
        # yrs's own events, observed without pycrdt's wrapping (which converts every attribute
        # of every event, a third of an update's cost here): only a path and a delta are read.
        self._subscriptions: list[Any] = []
        self._kinds: dict[str, type[Map[Any] | Array[Any] | Text]] = {}  # the observed roots
        self._keys: dict[str, set[str]] = {}  # by Map root outside the schema: keys changed
        self._whole = True  # the last rendering was made whole, not from the observers' events
        for name, kind in SCHEMA_ROOTS.items():
            self._observe(name, kind)
        for name in self._others:
            self._observe_other(name)

    def _observe(self, name: str, kind: type[Map[Any] | Array[Any] | Text]) -> None:
        root = self.doc.get(name, type=kind).integrated
        self._kinds[name] = kind
        if kind is Text:
            self._subscriptions.append(root.observe(partial(self._text, name)))
        else:
            self._subscriptions.append(root.observe_deep(partial(self._deep, name)))

    def _observe_other(self, name: str) -> None:
        """Observe a root outside the schema once it holds a map's content (what
        `domain.document` reads first). A root holding a text or an array is not observed
        (yrs panics when a text observer meets another type, which such a root may turn out to
        be): it is rendered whole after every update."""
        if name not in self._kinds and len(self.doc.get(name, type=Map)):
            self._observe(name, Map)

    def _text(self, name: str, event: Any) -> None:
        try:
            self._touched.setdefault(name, set()).add(WHOLE)
            if self._counts is None:  # counted from the update: no walk of the text
                self._deltas.setdefault(name, []).append(event.delta)
        except BaseException:  # never into yrs: the next rendering is whole instead
            self.stale = True

    def _deep(self, name: str, events: list[Any]) -> None:
        try:
            touched = self._touched.setdefault(name, set())
            kind = self._kinds[name]
            for event in events:
                path = event.path  # from the root to what changed: [3, 'clips', 0] in track 3
                if not path and kind is Array:  # the root's items came or went
                    self._deltas.setdefault(name, []).append(event.delta)
                elif path and isinstance(path[0], int):  # inside the item at that index
                    touched.add(path[0])
                elif kind is Map and name not in SCHEMA_ROOTS:  # the keys changed, or inside one
                    keys = self._keys.setdefault(name, set())
                    keys.update(event.keys if not path else (path[0],))
                else:
                    touched.add(WHOLE)
        except BaseException:  # never into yrs: the next rendering is whole instead
            self.stale = True

    @property
    def value(self) -> dict[str, Any]:
        """The plain rendering of the document as it stands."""
        if self._behind:
            self._behind = False
            self._value[LYRICS] = str(self.doc.get(LYRICS, type=Text))
        return self._value

    def changed(self, update: bytes, origin: str) -> list[Change]:
        """Apply `update` (as `apply`) and say what it changed (domain.changes): in the map
        roots outside the schema, among the keys the update wrote, unless the rendering was
        made whole (which may have caught up with what the observers did not say)."""
        before, after = self.apply(update, origin)
        return changes(before, after, self.lyrics, None if self._whole else self._keys)

    def apply(self, update: bytes, origin: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply `update` (crdt.apply: MalformedUpdate if it does not apply, the document then
        unchanged) and return the renderings before and after it."""
        before = self._value
        self._touched, self._deltas, self._keys = {}, {}, {}
        self._typed = self._deleted = 0
        self._applied += 1
        if self._applied % WHOLE_EVERY == 0:
            self.stale = True
        counted = self._count(update)
        try:
            apply(self.doc, update, origin)
        except BaseException:
            self.stale = True
            if self._counts is not None:  # it counted an update the document does not hold
                self._counts = None
                self.value  # noqa: B018 (the lyrics read while the document is as they were)
            raise
        length = len(self.doc.get(LYRICS, type=Text))
        if counted is not None and length - self._length != counted[2] - counted[3]:
            _log.warning("lyrics counted from the update disagree with the text: read from it")
            self._counts, self.stale = None, True
        self._length = length
        self._value = self._render(before)
        if counted is not None:
            self.lyrics = counted[0], counted[1]
        elif LYRICS in self._touched and self._typed >= 0:
            self.lyrics = self._typed, self._deleted
        else:
            self.lyrics = None if LYRICS in self._touched else (0, 0)
        return before, self._value

    def _count(self, update: bytes) -> tuple[int, int, int, int] | None:
        """The update's lyrics counted from its structs; None (and from now on the text's
        deltas) when they cannot be."""
        if self._counts is None:
            return None
        try:
            counted = self._counts.count(update)
        except MalformedUpdate:
            counted = None  # crdt.apply says so
        if counted is None:  # the lyrics read while the document is as they were
            self.value  # noqa: B018
            self._counts, self.stale = None, True
        return counted

    def _render(self, before: dict[str, Any]) -> dict[str, Any]:
        self._whole = self.stale
        if self.stale:
            self.stale = self._behind = False
            self._typed = -1  # the deltas were not read: the renderings say
            if self._counts is None:
                self._lyrics = _utf8(self.doc.get(LYRICS, type=Text))
            whole = plain(self.doc)
            self._others = [name for name in whole if name not in SCHEMA_ROOTS]
            for name in self._others:
                self._observe_other(name)
            return whole
        after = dict(before)
        for name, parts in self._touched.items():
            old = before.get(name)
            if WHOLE not in parts and self._kinds[name] is Array and isinstance(old, list):
                after[name] = self._array(name, old, parts)
            elif name == LYRICS and self._counts is not None:
                self._behind = True  # read when `value` is
            elif name == LYRICS:
                after[name] = self._patched()
            elif name in self._keys and WHOLE not in parts and isinstance(old, dict):
                after[name] = self._map(name, old, self._keys[name])
            else:
                after[name] = root_value(self.doc, name)
        # Which roots outside the schema the document has is looked up (pycrdt lists the roots
        # in about 20 us, a fifth of an update's cost) once it has one, and when an update
        # touched no observed root, which is how an update that only writes a new such root
        # shows; one that also writes an observed root is caught by the next whole rendering.
        if self._others or not self._touched:
            self._others = sorted(set(self.doc.keys()) - SCHEMA_ROOTS.keys())
        for name in self._others:
            if name not in self._kinds:  # not a map (yet)
                after[name] = root_value(self.doc, name)
                self._observe_other(name)
        return after

    def _map(self, name: str, before: dict[str, Any], keys: set[str]) -> Any:
        """A Map root outside the schema after the update: the changed keys rendered again,
        the others kept; rendered whole if a value is of a type this does not render."""
        root = self.doc.get(name, type=Map)
        after = dict(before)
        for key in keys:
            if key not in root:
                after.pop(key, None)
                continue
            value = _plain_value(root[key])
            if value is _UNRENDERED:
                return root_value(self.doc, name)
            after[key] = value
        return after if after else root_value(self.doc, name)

    def _patched(self) -> str:
        """The lyrics after the update's deltas, applied to the UTF-8 kept; read whole (and
        kept again) when a delta holds an embed or does not fit what was kept."""
        lyrics = self._lyrics
        if lyrics is not None and all(self._patch(lyrics, d) for d in self._deltas.get(LYRICS, ())):
            try:
                return lyrics.decode()
            except UnicodeDecodeError:
                pass
        self._typed = -1  # not counted: the renderings say
        text = self.doc.get(LYRICS, type=Text)
        self._lyrics = _utf8(text)
        return str(text)

    def _patch(self, lyrics: bytearray, delta: Any) -> bool:
        """Apply a Y.Text change delta (in UTF-8 bytes) to `lyrics`, counting the characters
        typed and deleted; False (and `lyrics` to be dropped) if it holds an embed or does not
        fit."""

        def insert(at: int, value: Any) -> int | None:
            if not isinstance(value, str):
                return None
            data = value.encode()
            lyrics[at:at] = data
            self._typed += len(value)
            return len(data)

        def delete(at: int, count: int) -> None:
            self._deleted += len(lyrics[at : at + count].decode(errors="replace"))
            del lyrics[at : at + count]

        return replay(delta, lambda: len(lyrics), insert, delete)

    def _array(self, name: str, before: list[Any], indices: set[int]) -> Any:
        """An Array root after the update: its items inserted and deleted as its deltas say
        (the inserted ones rendered), then the items changed inside rendered again; rendered
        whole if anything does not fit (an item that is not a shared type, a delta past the
        end)."""
        root = self.doc.get(name, type=Array)
        after: list[Any] = list(before)
        inserted: set[int] = set()
        fits = all(_splice(after, delta, inserted) for delta in self._deltas.get(name, ()))
        if fits and len(after) == len(root):
            for index in sorted(indices | inserted):
                item = root[index] if index < len(after) else None
                if not isinstance(item, Map | Array):
                    break
                after[index] = plain_root(item)
            else:
                return after
        return root_value(self.doc, name)


_UNRENDERED = object()


def _plain_value(value: Any) -> Any:
    """A value of a map as yrs renders it to JSON (`domain.document.plain_root`): a float
    without a fraction as an integer, one that is not finite as null, binary as its byte
    values; _UNRENDERED for a type rendered otherwise (XML, a subdocument)."""
    if isinstance(value, Map | Array):
        return plain_root(value)
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, bytes | bytearray):
        return list(value)
    if isinstance(value, dict):
        items = {k: _plain_value(v) for k, v in value.items()}
        return _UNRENDERED if _UNRENDERED in items.values() else items
    if isinstance(value, list):
        values = [_plain_value(v) for v in value]
        return _UNRENDERED if any(v is _UNRENDERED for v in values) else values
    if value is None or isinstance(value, str | int | bool):
        return value
    return _UNRENDERED


def _utf8(text: Text) -> bytearray | None:
    """The text as UTF-8, or None if it holds an embed."""
    chunks = [content for content, _ in text.diff()]
    if not all(isinstance(chunk, str) for chunk in chunks):
        return None
    return bytearray("".join(chunks).encode())


def _splice(items: list[Any], delta: Any, inserted: set[int]) -> bool:
    """Apply a Y.Array change delta (in items) to the rendered `items`, the inserted ones as
    placeholders whose indices go into `inserted` (rendered from the document afterwards: the
    delta's positions are those of the array after the update); False if it does not fit."""

    def insert(at: int, values: Any) -> int | None:
        if not isinstance(values, list):
            return None
        items[at:at] = [None] * len(values)
        # Items inserted before an earlier insert shift it: indices are recounted at the end.
        for index in sorted(inserted, reverse=True):
            if index >= at:
                inserted.discard(index)
                inserted.add(index + len(values))
        inserted.update(range(at, at + len(values)))
        return len(values)

    def delete(at: int, count: int) -> None:
        del items[at : at + count]
        for index in sorted(inserted):
            if index >= at:
                inserted.discard(index)
                if index >= at + count:
                    inserted.add(index - count)

    return replay(delta, lambda: len(items), insert, delete)
