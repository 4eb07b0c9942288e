"""Yjs without music: the lib0 encoding, strict checks of v1 updates and state vectors, how deep
shared types nest, and applying, building and folding pycrdt documents. No I/O, no framework,
nothing of ours: every read model, replay and the live rooms build on it."""

from crdt.document import EMPTY_UPDATE, DocumentDamaged, apply, build, fold
from crdt.errors import MalformedUpdate
from crdt.update import UpdateSummary, check_json, check_state_vector, check_update

__all__ = [
    "EMPTY_UPDATE",
    "DocumentDamaged",
    "MalformedUpdate",
    "UpdateSummary",
    "apply",
    "build",
    "check_json",
    "check_state_vector",
    "check_update",
    "fold",
]
