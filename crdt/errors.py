"""The one error of the CRDT layer."""

from __future__ import annotations


class MalformedUpdate(Exception):
    """Bytes that do not decode strictly: a Yjs update or state vector, lib0-encoded data, JSON
    content nested too deep, or an update that pycrdt refuses. Nothing of it was applied (but see
    `crdt.document.DocumentDamaged`)."""
