"""What the runner runs: a `Projection` (a read model's name, event types, tables, fold and
failure policy), and a `Target`, the tables and checkpoint a fold of it writes to (the live ones,
or a rebuild's twins)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from eventstore import RecordedEvent
from projections.failures import Apply
from projections.tables import Names, Table
from sqldb import Connection

Policy = Literal["stop", "skip"]


@runtime_checkable
class Fold(Protocol):
    """A fold whose work on a batch comes in two steps: `prepare`, before the runner opens the
    batch's transaction (reading the log, computing: work that must not hold a transaction
    open, which Postgres ends after 2 s idle), then `apply`, inside it (the writes). `prepare`
    may see events that `apply` then does not get (another runner applied them meanwhile);
    `apply` must work without `prepare` too (it then prepares itself)."""

    async def prepare(self, events: list[RecordedEvent]) -> None: ...

    async def apply(self, conn: Connection, events: list[RecordedEvent]) -> None: ...


Prepare = Callable[[list[RecordedEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Projection:
    """A read model: its name (the checkpoint key), the event types it handles, its tables
    (projections/tables.py, created by the runner) and their shape's `version` (a change
    rebuilds the model beside the live one, projections/rebuild.py), and `fold`, which makes the
    `apply` that writes into the tables `Names` gives: it receives only events of those types,
    in position order, inside the transaction (or a `Fold`, which also prepares each batch
    before the transaction). `prepares` are event types that a `Fold`'s `prepare` sees beside
    them but for which it writes nothing: a batch of only those needs no transaction (the
    `ai_results` projection looks for asset ids in every edit, and writes only for results).
    `policy` says what to do when it fails (see projections/runner.py)."""

    name: str
    event_types: frozenset[str]
    fold: Callable[[Names], Apply | Fold]
    tables: Sequence[Table] = field(default=(), kw_only=True)
    prepares: frozenset[str] = field(default=frozenset(), kw_only=True)
    version: int = field(default=1, kw_only=True)
    policy: Policy = field(default="stop", kw_only=True)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a fold writes: the checkpoint row it advances (the projection's name, or its
    rebuild's) and the `apply` made for those tables."""

    checkpoint: str
    projection: Projection
    apply: Apply
    prepare: Prepare | None = None

    @classmethod
    def of(cls, checkpoint: str, projection: Projection, names: Names) -> Target:
        """The target writing `projection` into the tables `names` gives."""
        fold = projection.fold(names)
        if isinstance(fold, Fold):
            return cls(checkpoint, projection, fold.apply, fold.prepare)
        return cls(checkpoint, projection, fold)
