"""Restore: a project's document, or one part of it, made again what it was at a version of its
stream, by ONE server-side edit through the live room (the `LiveDocuments` port: checked, applied
by the room's writer, appended as the actor's `doc.updated` with `via: "restore"`, broadcast to
every socket on every node), then a `doc.restored` event naming the version, the part and who.

The edit is computed on a copy of the document as it is when the room's writer runs it
(`crdt.reconcile`): what version N lacks is deleted, what it has is inserted, what is equal is kept,
so concurrent edits of the kept parts merge. What is and is not preserved: docs/api.md
("Restore")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pycrdt import Array, Doc, Map

from crdt import reconcile
from domain import events
from domain.document import SCHEMA_ROOTS
from eventstore import EventStore
from jacameno.collab.room import Actor
from projections import replay


class RestoreError(Exception):
    """A restore that cannot be made as asked (nothing is written)."""


class NoSuchVersion(RestoreError):
    """The version is below 0 or beyond the stream's head."""


class BadPath(RestoreError):
    """The path names no part of the document that can be restored."""


class LiveDocuments(Protocol):
    """Where a server-side edit of a live document goes (jacameno.collab.rooms.Rooms)."""

    async def edit(
        self, project_id: str, change: Callable[[Doc[Any]], None], actor: Actor
    ) -> int | None:
        """Run `change` on a copy of the current document and write what it changed as
        `actor`'s edit; the version it took, or None if it changed nothing."""
        ...


@dataclass(frozen=True, slots=True)
class Part:
    """What a restore covers: a schema root (`root`), or one item of an Array root of Maps
    (`item`: its "id")."""

    root: str | None = None
    item: str | None = None

    @property
    def path(self) -> str | None:
        if self.root is None:
            return None
        return self.root if self.item is None else f"{self.root}/{self.item}"


def parse_path(path: str | None) -> Part:
    """The part of the document `path` names: None (all of it), a root ("lyrics", "meta", ...)
    or "<array root>/<id>" ("tracks/<id>"). BadPath otherwise."""
    if path is None:
        return Part()
    root, _, item = path.partition("/")
    kind = SCHEMA_ROOTS.get(root)
    if kind is None:
        raise BadPath(f"no such part of the document: {root!r} (one of {', '.join(SCHEMA_ROOTS)})")
    if "/" in path and (kind is not Array or not item or "/" in item):
        raise BadPath(f"{path!r}: only one item of tracks, comments or markers, by its id")
    return Part(root, item or None)


@dataclass(frozen=True, slots=True)
class Restored:
    """A restore's outcome: the version restored, the part, the version its update took (None:
    nothing differed) and the version of its `doc.restored` event."""

    version: int
    path: str | None
    update_version: int | None
    event_version: int


class Documents:
    def __init__(self, store: EventStore, live: LiveDocuments) -> None:
        self.store = store
        self.live = live

    async def restore(
        self, actor: str, project_id: str, version: int, path: str | None = None
    ) -> Restored:
        """Make the document (or the part at `path`) what it was at `version`, as `actor`'s
        edit. NoSuchVersion, BadPath; the live document's errors (RoomUnavailable, ...) as
        `LiveDocuments.edit` raises them. The caller checks that `actor` may write."""
        part = parse_path(path)
        stream = events.stream_name(project_id)
        head = await self.store.stream_version(stream)
        if not 0 <= version <= head:
            raise NoSuchVersion(f"version {version} is not between 0 and the head, {head}")
        target = (await replay.state_at(self.store, stream, version)).doc

        def change(doc: Doc[Any]) -> None:
            with doc.transaction(origin="restore"):
                restore_part(doc, target, part)

        # The update names what it restores in its own metadata: even if this node dies before
        # the doc.restored event below is appended, the log says what the update was.
        restores = {"restores": {"version": version, "path": part.path}}
        update_version = await self.live.edit(project_id, change, Actor(actor, "restore", restores))
        restored = events.doc_restored(
            version=version, path=part.path, update_version=update_version, user_id=actor
        )
        appended = await self.store.append(stream, [restored])
        return Restored(version, part.path, update_version, appended.last_version)


def restore_part(doc: Doc[Any], target: Doc[Any], part: Part) -> None:
    """Edit `doc` so that `part` of it equals `target`'s."""
    if part.root is None:
        reconcile.reconcile_roots(doc, target, SCHEMA_ROOTS)
        return
    kind = SCHEMA_ROOTS[part.root]
    current, wanted = doc.get(part.root, type=kind), target.get(part.root, type=kind)
    if part.item is None:
        reconcile.reconcile(current, wanted)
    else:
        assert isinstance(current, Array)
        assert isinstance(wanted, Array)
        _restore_item(current, wanted, part.item)


def _ids(array: Array[Any]) -> dict[Any, int]:
    """Where the first item with each "id" is in `array`, in the array's order, from one
    rendering (reading the items one by one walks the array from its start each time)."""
    found: dict[Any, int] = {}
    for index, item in enumerate(json.loads(str(array))):
        key = item.get("id") if isinstance(item, dict) else None
        if isinstance(key, str):
            found.setdefault(key, index)
    return found


def _index(array: Array[Any], ids: dict[Any, int], item_id: str) -> int | None:
    """The index of the Map with `item_id` in `array`, whose items' ids are `ids`."""
    index = ids.get(item_id)
    return index if index is not None and isinstance(array[index], Map) else None


def _restore_item(current: Array[Any], wanted: Array[Any], item_id: str) -> None:
    present, before = _ids(current), _ids(wanted)
    mine, theirs = _index(current, present, item_id), _index(wanted, before, item_id)
    if theirs is None:
        if mine is not None:
            del current[mine]
        return
    if mine is not None:
        reconcile.reconcile(current[mine], wanted[theirs])
        return
    # Back where it was: after the nearest item before it (at N) that is still there.
    at = 0
    for key in reversed([key for key, index in before.items() if index < theirs]):
        found = _index(current, present, key)
        if found is not None:
            at = found + 1
            break
    current.insert(at, reconcile.copy(wanted[theirs]))
