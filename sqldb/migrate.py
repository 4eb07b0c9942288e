"""Schema migrations: version-named SQL files under `migrations/postgres` and `migrations/sqlite`.

Each file `NNNN_name.sql` is applied once and recorded with a checksum in `schema_migrations`, in
one transaction per file on Postgres and one for the whole run on SQLite. Running twice applies
nothing new; two processes at once are serialized (an
advisory lock on Postgres, the write lock on SQLite). A recorded file whose text has changed since
it was applied is an error: migrations are append-only."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from dbdrivers.sqlite import use_wal
from sqldb import Kind

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4A4143414D454E4F  # "JACAMENO"
_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at text NOT NULL
)
"""


class MigrationError(Exception):
    """A migration cannot be applied, or the applied ones disagree with the files."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_root() -> Path:
    """The folder of SQL files: beside the package in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no migrations folder near {here}")


def load(kind: Kind, root: Path | None = None) -> list[Migration]:
    """The migrations of one database kind, in version order."""
    folder = (root or migrations_root()) / kind
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(match[1], match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two {kind} migrations share a version: {versions}")
    return found


def _pending(migrations: list[Migration], applied: dict[str, str], kind: Kind) -> list[Migration]:
    known = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        migration = known.get(version)
        if migration is None:
            raise MigrationError(f"{kind}: applied migration {version} has no file here")
        if migration.checksum != checksum:
            raise MigrationError(
                f"{kind}: migration {version}_{migration.name} changed after it was applied"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate_postgres(dsn: str, root: Path | None = None) -> list[str]:
    """Apply pending Postgres migrations; return the versions applied now."""
    migrations = load("postgres", root)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_TABLE)
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
            applied: list[str] = []
            for migration in _pending(migrations, {r[0]: r[1] for r in rows}, "postgres"):
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, $2, $3, now()::text)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied.append(migration.version)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"postgres: {exc}") from exc
    finally:
        await conn.close()


async def pending_postgres(dsn: str, root: Path | None = None) -> list[Migration]:
    """The Postgres migrations not applied yet, read without changing anything."""
    migrations = load("postgres", root)
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise MigrationError(f"postgres: cannot connect to {_where(dsn)}: {exc}") from exc
    try:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return migrations
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"postgres: {exc}") from exc
    finally:
        await conn.close()
    return _pending(migrations, {r[0]: r[1] for r in rows}, "postgres")


def _where(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def _statements(sql: str) -> list[str]:
    statements: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise MigrationError(f"incomplete SQL statement at the end: {current[:80]!r}")
    return statements


def migrate_sqlite(path: str | Path, root: Path | None = None) -> list[str]:
    """Apply pending SQLite migrations to the database file at `path` (created if missing)."""
    migrations = load("sqlite", root)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    try:
        use_wal(conn)  # a server and a projection process may migrate a new file together
        applied: list[str] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_TABLE)
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            for migration in _pending(migrations, {r[0]: r[1] for r in rows}, "sqlite"):
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, datetime('now'))",
                    (migration.version, migration.name, migration.checksum),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied
    except sqlite3.Error as exc:
        raise MigrationError(f"sqlite: {exc}") from exc
    finally:
        conn.close()
