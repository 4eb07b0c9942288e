"""What the runner runs: a `Projection` (a read model's name, event types, tables, fold and
failure policy), and a `Target`, the tables and checkpoint a fold of it writes to (the live ones,
or a rebuild's twins)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from projections.failures import Apply
from projections.tables import Names, Table

Policy = Literal["stop", "skip"]


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: its name (the checkpoint key), the event types it handles, its tables
    (projections/tables.py, created by the runner) and their shape's `version` (a change
    rebuilds the model beside the live one, projections/rebuild.py), and `fold`, which makes the
    `apply` that writes into the tables `Names` gives: it receives only events of those types,
    in position order, inside the transaction. `policy` says what to do when it fails (see
    projections/runner.py)."""

    name: str
    event_types: frozenset[str]
    fold: Callable[[Names], Apply]
    tables: Sequence[Table] = field(default=(), kw_only=True)
    version: int = field(default=1, kw_only=True)
    policy: Policy = field(default="stop", kw_only=True)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a fold writes: the checkpoint row it advances (the projection's name, or its
    rebuild's) and the `apply` made for those tables."""

    checkpoint: str
    projection: Projection
    apply: Apply
