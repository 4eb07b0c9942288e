"""Opening the event log that the settings name, migrating it first where that is automatic."""

from __future__ import annotations

from eventstore import EventStore, Limits, Pacing
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from jacameno.migrate import migrate_postgres, migrate_sqlite
from jacameno.settings import Settings


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the configured database; return the versions applied."""
    if settings.database_kind == "sqlite":
        return migrate_sqlite(settings.sqlite_path)
    return await migrate_postgres(settings.database_url)


async def open_event_store(settings: Settings) -> EventStore:
    if settings.auto_migrate:
        await migrate(settings)
    pacing = None
    if settings.commit_pace_ms:
        pacing = Pacing(settings.commit_pace_ms / 1000, settings.commit_pace_above)
    limits = Limits(snapshots_per_stream=settings.snapshots_per_stream)
    if settings.database_kind == "sqlite":
        return await SQLiteEventStore.open(settings.sqlite_path, pacing=pacing, limits=limits)
    return await PostgresEventStore.open(settings.database_url, pacing=pacing, limits=limits)
