"""CRDT work on pycrdt documents, with pycrdt's failure modes translated.

pycrdt raises ValueError for updates it cannot decode and may panic (`PanicException`, a
BaseException that `except Exception` misses) on inputs that decode; both become
MalformedUpdate here. Only updates that passed `update.check_update` reach these functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Doc

from crdt.errors import MalformedUpdate

EMPTY_UPDATE = b"\x00\x00"  # no structs, no deletions: what an empty document encodes to


class DocumentDamaged(MalformedUpdate):
    """pycrdt panicked while applying: the document may hold part of the update."""


def apply(doc: Doc[Any], update: bytes, origin: str) -> None:
    """Apply `update` to `doc` in one transaction. MalformedUpdate if pycrdt refuses it and the
    document is unchanged; DocumentDamaged if it panicked (the document must be dropped)."""
    try:
        with doc.transaction(origin=origin):
            doc.apply_update(update)
    except ValueError as exc:
        raise MalformedUpdate(f"update does not apply: {exc}") from exc
    except BaseException as exc:
        if isinstance(exc, Exception | KeyboardInterrupt | SystemExit):
            raise
        raise DocumentDamaged(f"update made pycrdt panic: {exc!r}") from exc


def build(base: bytes, updates: Iterable[bytes], *, gc: bool = True) -> Doc[Any]:
    """A new document with `base` (a whole-document update) and then `updates` applied.
    `gc=False` for a scratch copy that only computes an edit: yrs's garbage collection of what a
    transaction deleted costs about 25 us per item at its commit (2.3 s for 100,000 characters
    of a large document), and a scratch copy's deleted content is never kept nor sent."""
    doc: Doc[Any] = Doc(skip_gc=not gc)
    if base != EMPTY_UPDATE:
        apply(doc, base, "load")
    for update in updates:
        apply(doc, update, "load")
    return doc


def warm_up() -> None:
    """Make one document on the running event loop. pycrdt's first document under a loop
    imports anyio's asyncio backend (5 ms, measured on this machine); a server's first room
    would wait for it, and with it every socket opening that room and every other socket of the
    node (a restart's reconnecting burst). Call it once the loop runs, before serving."""
    Doc()


def fold(base: bytes, updates: Iterable[bytes]) -> bytes:
    """The whole-document update of `base` plus `updates` (a snapshot's state)."""
    return build(base, updates).get_update()
