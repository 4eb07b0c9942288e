"""Project documents as the tests compare them: from a client's JSON, from a pycrdt Doc, and
rebuilt from the project's `doc.updated` events in the log alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Doc

import crdt
from domain import document as project_document
from domain import events
from domain.document import ROOTS
from harness.databases import open_store


def normalize(value: Any) -> Any:
    """JSON-like values with every number as a float: pycrdt returns numbers as floats, Yjs
    returns integers as JavaScript integers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    raise TypeError(f"unexpected {type(value).__name__} in a document")


def from_json(document: dict[str, Any]) -> dict[str, Any]:
    """The schema roots of a Yjs `doc.toJSON()`, normalized."""
    empty: dict[str, Any] = dict(project_document.empty())
    roots = {root: document.get(root, empty[root]) for root in ROOTS}
    normalized: dict[str, Any] = normalize(roots)
    return normalized


def from_doc(doc: Doc[Any]) -> dict[str, Any]:
    """The schema roots of a pycrdt Doc, normalized."""
    normalized: dict[str, Any] = normalize(project_document.read(doc))
    return normalized


def build(updates: Iterable[bytes]) -> Doc[Any]:
    return crdt.build(crdt.EMPTY_UPDATE, updates)


def state_vector(doc: Doc[Any]) -> dict[int, int]:
    """The decoded state vector (raw bytes may list clients in any order)."""
    return crdt.check_state_vector(doc.get_state())


def missing_from(doc: Doc[Any], updates: Iterable[bytes]) -> bool:
    """Whether applying `updates` to a copy of `doc` changes it: some content or deletion they
    carry is not in `doc`."""
    copy = build([doc.get_update()])
    before = (from_doc(copy), state_vector(copy))
    for update in updates:
        copy.apply_update(update)
    return (from_doc(copy), state_vector(copy)) != before


async def logged_updates(database_url: str, project_id: str) -> list[dict[str, Any]]:
    """The project's `doc.updated` events, in log order: data and metadata."""
    store = await open_store(database_url)
    try:
        logged = await store.read_stream(events.stream_name(project_id))
    finally:
        await store.close()
    return [
        {"data": e.data, "metadata": dict(e.metadata)}
        for e in logged
        if e.type == events.DOC_UPDATED
    ]


async def from_log(database_url: str, project_id: str) -> Doc[Any]:
    """The project document rebuilt from the log alone (no snapshot, no server)."""
    return build(e["data"] for e in await logged_updates(database_url, project_id))
