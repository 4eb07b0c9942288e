"""Opening the event log that the settings name, migrating it first where that is automatic."""

from __future__ import annotations

from eventstore import EventStore, Limits, Pacing
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from jacameno.settings import Settings
from sqldb.migrate import MigrationError, migrate_postgres, migrate_sqlite, pending_postgres


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the configured database; return the versions applied."""
    if settings.database_kind == "sqlite":
        return migrate_sqlite(settings.sqlite_path)
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
    if settings.auto_migrate:
        await migrate(settings)
    pacing = None
    if settings.commit_pace_ms:
        pacing = Pacing(settings.commit_pace_ms / 1000, settings.commit_pace_above)
    limits = Limits(snapshots_per_stream=settings.snapshots_per_stream)
    if settings.database_kind == "sqlite":
        return await SQLiteEventStore.open(settings.sqlite_path, pacing=pacing, limits=limits)
    return await PostgresEventStore.open(settings.database_url, pacing=pacing, limits=limits)
