"""The event store's Postgres sessions: the writer's settings on top of those every connection of
ours shares (`dbdrivers.postgres`), and the translation of driver errors into the event store's
tree.

- `lock_timeout` and `statement_timeout` (the writer): a wait behind a stalled holder ends with
  an error that the writer retries, after ending that holder if it is a writer idle on its client
  inside a transaction (`eventstore.pgwriter`).

A query parameter of the database URL of the same name overrides each of them
(`postgresql://host/db?lock_timeout=5s`): asyncpg passes such parameters to the server.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from dbdrivers.postgres import SESSION, UNAVAILABLE
from eventstore.errors import EventStoreError, StoreUnavailableError

# The event store's writer, on top: how long it waits behind the sequencer lock, and runs at all.
WRITER: Mapping[str, str] = {
    **SESSION,
    "lock_timeout": "1s",
    "statement_timeout": "10s",
    "synchronous_commit": "on",
}


def translate(exc: BaseException) -> EventStoreError:
    """Map an asyncpg or socket error to the event store's tree."""
    if isinstance(exc, EventStoreError):
        return exc
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedFunctionError):
        return EventStoreError(f"the event store schema is missing ({exc}): run `jacameno migrate`")
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailableError(f"postgres: {type(exc).__name__}: {exc}")
    return EventStoreError(f"postgres: {type(exc).__name__}: {exc}")
