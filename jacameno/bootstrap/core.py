"""The core every command builds from the settings alone: the schema (migrated, or checked before
serving), the event log, the tables, the projection runner and the blob storage. `jacameno
serve` builds the rest on top of it (jacameno.bootstrap.serving); a command without HTTP
(`jacameno worker`, a replay) takes just this."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from eventstore import EventStore, Limits, Pacing
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from jacameno.assets.service import Assets
from jacameno.settings import Settings, StorageConfig
from jacameno.storage import BlobStore
from jacameno.storage.local import LocalBlobStore
from projections.assets import AssetsReadModel
from projections.catalog_reads import CatalogReadModel
from projections.projects import ProjectsReadModel
from projections.registry import read_models
from projections.runner import Projection, ProjectionRunner
from sqldb import Database, open_database
from sqldb.locks import Locks, open_locks
from sqldb.migrate import MigrationError, migrate_postgres, migrate_sqlite, pending_postgres

logger = logging.getLogger(__name__)


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the configured database; return the versions applied."""
    if settings.database_kind == "sqlite":
        # In a thread: SQLite's lock may be held by a transaction of this very event loop (a
        # second server in one process, a read model's fold), which could not end while the
        # loop sat in the busy handler; they waited on each other for the whole busy timeout.
        return await asyncio.to_thread(migrate_sqlite, settings.sqlite_path)
    return await migrate_postgres(settings.database_url)


async def check_schema(settings: Settings) -> None:
    """Fail plainly, before serving, if Postgres is out of reach or its schema lags behind the
    code and will not be migrated at start (SQLite and `JACAMENO_AUTO_MIGRATE` migrate then)."""
    if settings.database_kind == "sqlite" or settings.auto_migrate:
        return
    pending = await pending_postgres(settings.database_url)
    if pending:
        names = ", ".join(f"{m.version}_{m.name}" for m in pending)
        raise MigrationError(
            f"the Postgres database has {len(pending)} migration(s) not applied yet ({names}).\n"
            "Run `jacameno migrate` first, or set JACAMENO_AUTO_MIGRATE=true to migrate at start."
        )


async def open_event_store(settings: Settings) -> EventStore:
    """The log the settings name, migrated first where that is automatic (the caller closes
    it; `event_store` does)."""
    if settings.auto_migrate:
        await migrate(settings)
    pacing = None
    if settings.commit_pace_ms:
        pacing = Pacing(settings.commit_pace_ms / 1000, settings.commit_pace_above)
    limits = Limits(
        snapshots_per_stream=settings.snapshots_per_stream,
        snapshot_spacing=settings.snapshot_spacing,
    )
    if settings.database_kind == "sqlite":
        return await SQLiteEventStore.open(
            settings.sqlite_path,
            pacing=pacing,
            limits=limits,
            loop_reads=settings.sqlite_loop_reads,
        )
    return await PostgresEventStore.open(settings.database_url, pacing=pacing, limits=limits)


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


@contextlib.asynccontextmanager
async def closing(opening: Awaitable[C]) -> AsyncIterator[C]:
    """What `opening` opens, closed on exit."""
    opened = await opening
    try:
        yield opened
    finally:
        await opened.close()


def event_store(settings: Settings) -> contextlib.AbstractAsyncContextManager[EventStore]:
    """The log the settings name, migrated first where that is automatic; closed on exit."""
    return closing(open_event_store(settings))


def database(settings: Settings) -> contextlib.AbstractAsyncContextManager[Database]:
    """The tables (accounts, sessions, read models) in the same database as the log."""
    return closing(
        open_database(settings.database_url, sqlite_loop_reads=settings.sqlite_loop_reads)
    )


@contextlib.asynccontextmanager
async def projections(
    store: EventStore,
    db: Database,
    locks: Locks,
    *,
    follow: bool = True,
    leads: bool = True,
    extra: Sequence[Projection] = (),
    lull: float,
) -> AsyncIterator[ProjectionRunner]:
    """The read models (and the `extra` projections of the command: serve's reactions to the
    log), caught up from their checkpoints and following the log until exit (as the one active
    runner of each across the nodes, or standing by; with `leads=False` only ever standing by,
    beside a `jacameno projections run` process); with `follow=False` (a command that reports,
    retries failures or rebuilds) the runner is not started. Following a live log, each
    projection reads it at most every `lull` seconds unless someone waits for a position."""
    models = [*read_models(store), *extra]
    runner = ProjectionRunner(store, db, models, locks=locks, leads=leads, lull=lull)
    if not follow:
        try:
            yield runner
        finally:
            await locks.close()
        return
    await runner.start()
    if not leads:
        logger.info(
            "standing by for every projection: a `jacameno projections run` process folds the log",
            extra={"action": "projection.standby_only"},
        )
    try:
        yield runner
    finally:
        await runner.stop()


async def open_storage(config: StorageConfig) -> BlobStore:
    """The blob store the settings name (the caller closes it; `storage` does):
    StorageUnavailable if an S3 bucket cannot be reached."""
    if config.kind == "file":
        return LocalBlobStore(config.folder)
    # Imported here: aiobotocore and aiohttp are most of a quarter of a second of every start,
    # and a server on files never uses them.
    from jacameno.storage.s3 import S3BlobStore, S3Location

    location = S3Location(config.bucket, config.prefix, config.s3_region, config.s3_endpoint_url)
    return await S3BlobStore.open(location, part_bytes=config.part_bytes)


def storage(config: StorageConfig) -> contextlib.AbstractAsyncContextManager[BlobStore]:
    """The blob store the settings name (local files or S3), closed on exit."""
    return closing(open_storage(config))


@dataclass(frozen=True, slots=True)
class Core:
    settings: Settings
    store: EventStore
    db: Database
    runner: ProjectionRunner
    blobs: BlobStore


@contextlib.asynccontextmanager
async def core(
    settings: Settings, *, follow: bool = True, extra: Sequence[Projection] = ()
) -> AsyncIterator[Core]:
    """The log, the tables, the runner (following the log unless `follow` is False, leading
    unless `JACAMENO_PROJECTIONS=standby`; with the command's `extra` projections) and the blob
    storage, open together and closed in reverse order."""
    locks = open_locks(settings.database_url)
    leads = settings.projections == "run"
    lull = settings.projections_lull_ms / 1000
    async with (
        event_store(settings) as store,
        database(settings) as db,
        projections(store, db, locks, follow=follow, leads=leads, extra=extra, lull=lull) as runner,
        storage(settings.storage) as blobs,
    ):
        yield Core(settings, store, db, runner, blobs)


def assets(base: Core, reads: ProjectsReadModel) -> Assets:
    """Asset uploads and reads over the core's blob store; uploads spool in the data folder."""
    settings = base.settings
    return Assets(
        base.store,
        base.blobs,
        base.runner,
        AssetsReadModel(base.db),
        reads,
        max_bytes=settings.storage.max_upload_bytes,
        spool_dir=settings.data_dir / "spool",
        catalog=CatalogReadModel(base.db),
    )
