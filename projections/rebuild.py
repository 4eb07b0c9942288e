"""A read model's tables, made and remade: created when a projection first runs, and rebuilt
beside the live ones without downtime.

A rebuild creates each table's `__rebuild` twin (projections/tables.py) and folds the log from
position 0 into the twins, under its own checkpoint row (`<name>__rebuild`), while the live tables
go on following the log and serving readers. Once the twins have caught up with the log's head,
one transaction swaps them in (`swap`): it locks the live checkpoint row (so the live runner, on
any node, waits), applies to the twins whatever the live tables applied since the twins' last
batch, drops the live tables, renames the twins into their place, and moves the live checkpoint
to the twins' position with the projection's current schema version. Readers see the old model
until that commit and the new one after it; never an empty or half-built one, nor an error: on
Postgres the swap takes the live tables' locks first, with a short lock timeout, giving way to
readers (and trying again) rather than deadlocking with one that holds another of the tables.
A rebuild that dies leaves twins and a checkpoint row that the next rebuild drops and starts
over."""

from __future__ import annotations

from collections.abc import Sequence

from eventstore import EventStore
from projections.failures import Apply, now_ms
from projections.tables import REBUILD_SUFFIX, Table, qualified
from sqldb import Connection, Database, Kind
from sqldb.locks import lock_key

# How long the swap waits for a live table's readers before it lets go of what it holds and is
# tried again (projections/applier.py backs off): far below Postgres's deadlock_timeout (1 s).
SWAP_LOCK_TIMEOUT_MS = 100


def rebuild_checkpoint(name: str) -> str:
    return name + REBUILD_SUFFIX


async def exists(conn: Connection, kind: Kind, physical: str) -> bool:
    if kind == "postgres":
        return await conn.fetchval("SELECT to_regclass($1)", qualified(kind, physical)) is not None
    return (
        await conn.fetchval(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", physical
        )
        is not None
    )


async def serialize(conn: Connection, kind: Kind, name: str) -> None:
    """Make the transaction the only one changing projection `name`'s tables (Postgres: two
    nodes starting together would race to create them; SQLite writes one at a time anyway)."""
    if kind == "postgres":
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"tables:{name}"))


async def create_missing(
    conn: Connection, kind: Kind, tables: Sequence[Table], *, suffix: str = ""
) -> bool:
    """Create the tables (or their twins) that do not exist; True if any was missing."""
    created = False
    for table in tables:
        physical = table.name + suffix
        if not await exists(conn, kind, physical):
            for statement in table.create(kind, physical):
                await conn.execute(statement)
            created = True
    return created


async def prepare(db: Database, name: str, tables: Sequence[Table]) -> None:
    """Fresh, empty twins and a rebuild checkpoint at 0 (what a dead rebuild left is dropped)."""
    checkpoint = rebuild_checkpoint(name)
    async with db.transaction() as conn:
        await serialize(conn, db.kind, name)
        for table in tables:
            await conn.execute(
                f"DROP TABLE IF EXISTS {qualified(db.kind, table.name + REBUILD_SUFFIX)}"
            )
        await create_missing(conn, db.kind, tables, suffix=REBUILD_SUFFIX)
        await conn.execute("DELETE FROM projection_failures WHERE projection = $1", checkpoint)
        await conn.execute("DELETE FROM projection_checkpoints WHERE name = $1", checkpoint)
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2)",
            checkpoint,
            now_ms(),
        )


async def swap(
    db: Database,
    store: EventStore,
    *,
    name: str,
    tables: Sequence[Table],
    version: int,
    event_types: frozenset[str],
    apply: Apply,
) -> int:
    """Swap the caught-up twins in for the live tables, atomically (see the module docstring);
    return the position the live model then stands at."""
    checkpoint = rebuild_checkpoint(name)
    lock = " FOR UPDATE" if db.kind == "postgres" else ""
    async with db.transaction() as conn:
        await serialize(conn, db.kind, name)
        live = int(
            await conn.fetchval(
                f"SELECT position FROM projection_checkpoints WHERE name = $1{lock}", name
            )
        )
        built = int(
            await conn.fetchval(
                f"SELECT position FROM projection_checkpoints WHERE name = $1{lock}", checkpoint
            )
        )
        while built < live:  # the live model went on meanwhile: the twins catch up here
            batch = await store.read_all(built, min(live - built, 1000))
            if not batch:
                break
            events = [e for e in batch if e.position <= live and e.type in event_types]
            if events:
                await apply(conn, events)
            built = min(batch[-1].position, live)
        if db.kind == "postgres" and tables:
            # A reader locks the tables its query names one after the other: holding one live
            # table while waiting for another that such a reader holds (while it waits for
            # ours) is a deadlock, which Postgres ends after a second by failing the reader.
            # Take them all at once or give up quickly and let the whole swap be tried again.
            await conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_MS}ms'")
            names = ", ".join(qualified(db.kind, t.name) for t in tables)
            await conn.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
        for table in tables:
            await conn.execute(f"DROP TABLE IF EXISTS {qualified(db.kind, table.name)}")
            await conn.execute(
                f"ALTER TABLE {qualified(db.kind, table.name + REBUILD_SUFFIX)}"
                f' RENAME TO "{table.name}"'
            )
        position = max(live, built)
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, schema_version = $3,"
            " updated_at = $4, failing_since = NULL, last_error = NULL WHERE name = $1",
            name,
            position,
            version,
            now_ms(),
        )
        await conn.execute("DELETE FROM projection_failures WHERE projection = $1", name)
        await conn.execute(
            "UPDATE projection_failures SET projection = $1 WHERE projection = $2",
            name,
            checkpoint,
        )
        await conn.execute("DELETE FROM projection_checkpoints WHERE name = $1", checkpoint)
    return position
