"""Read-only access for analysts to exactly the read models (Postgres): `jacameno analyst grant
ROLE` lets a database role read every table of the `readmodels` schema, now and after every
rebuild (default privileges: a rebuilt table is a new table), and nothing else we keep: not the
log (`es_events`), the accounts, the refresh sessions or the runner's checkpoints, which stay in
`public` where the role is granted nothing. The role's search_path in this database is set to
the read models, so its queries name tables as the documentation does (`doc_tracks`).
SQLite has no roles: analysts get `jacameno export` or a copy of the file."""

from __future__ import annotations

from sqldb import READ_MODELS_SCHEMA, Database


class NoSuchRole(LookupError):
    """The role to grant or revoke does not exist in the cluster."""


class NoRoles(RuntimeError):
    """The database has no roles (SQLite)."""


async def _role(db: Database, role: str) -> str:
    if db.kind != "postgres":
        raise NoRoles("SQLite has no database roles: use `jacameno export` or a copy of the file")
    if await db.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) is None:
        raise NoSuchRole(f"no database role named {role!r} (CREATE ROLE it first)")
    return str(await db.fetchval("SELECT quote_ident($1)", role))


async def grant(db: Database, role: str) -> None:
    quoted = await _role(db, role)
    schema = READ_MODELS_SCHEMA
    async with db.transaction() as conn:
        database = await conn.fetchval("SELECT quote_ident(current_database())")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quoted}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {quoted}")
        # tables the runner creates later (a new read model, every rebuild) are granted too
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {quoted}"
        )
        await conn.execute(f"ALTER ROLE {quoted} IN DATABASE {database} SET search_path = {schema}")


async def revoke(db: Database, role: str) -> None:
    quoted = await _role(db, role)
    schema = READ_MODELS_SCHEMA
    async with db.transaction() as conn:
        database = await conn.fetchval("SELECT quote_ident(current_database())")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE SELECT ON TABLES FROM {quoted}"
        )
        await conn.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA {schema} FROM {quoted}")
        await conn.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {quoted}")
        await conn.execute(f"ALTER ROLE {quoted} IN DATABASE {database} RESET search_path")
