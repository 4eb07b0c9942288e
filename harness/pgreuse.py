"""Reused test databases: a Postgres database a test has finished with is reset to the state of
the migrated template it was cloned from and renamed, so that the next test gets it instead of a
new clone. A clone and its drop cost most of a second each on a busy machine (CREATE DATABASE
copies the template through the WAL); a reset costs a tenth of a second or less.

Given back, a database first has every session still on it closed (as DROP DATABASE ... WITH
(FORCE) would) and is renamed, so that a leftover server still holding the old URL cannot reach
it, now or as the next test's database. The reset then drops what the template does not have
(tables the projections made at run time, their rebuild twins, functions, types, schemas), gives
swapped-in read models' indexes their template names back, empties the template's tables that
changed and restarts their sequences, writes back the rows the migrations seeded, clears the
database's settings, and checks the database's catalog and rows against the template's; any
difference, or a lock it cannot take within a couple of seconds, and the database is dropped and
a new clone made instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg

from harness.databases import create_database, drop_database, with_database

RESET_LOCK_TIMEOUT = "2s"

_USER_SCHEMAS = (
    "SELECT oid, nspname FROM pg_namespace"
    " WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'"
)

# One row per fact a fresh clone and a reset database must agree on, as text: schemas, relations
# (with their privileges), columns, indexes, constraints, routines, types, triggers, views, the
# sequences' positions, default privileges, and the database's own privileges and settings.
_CATALOG = f"""
WITH ns AS ({_USER_SCHEMAS})
SELECT 'schema ' || n.nspname || ' ' || coalesce(array_to_string(n.nspacl, ','), '')
  FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns)
UNION ALL
SELECT 'relation ' || ns.nspname || '.' || c.relname || ' '
       || c.relkind::text || c.relpersistence::text
       || ' ' || coalesce(array_to_string(c.relacl, ','), '')
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'column ' || ns.nspname || '.' || c.relname || '.' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'constraint ' || ns.nspname || '.' || conname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN ns ON ns.oid = k.connamespace
UNION ALL
SELECT 'routine ' || ns.nspname || '.' || p.proname
       || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(p.prosrc)
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
UNION ALL
SELECT 'type ' || ns.nspname || '.' || t.typname || ' ' || t.typtype::text
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(g.oid) FROM pg_trigger g
  JOIN pg_class c ON c.oid = g.tgrelid JOIN ns ON ns.oid = c.relnamespace
 WHERE NOT g.tgisinternal
UNION ALL
SELECT 'view ' || ns.nspname || '.' || c.relname || ' ' || pg_get_viewdef(c.oid)
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT 'sequence ' || schemaname || '.' || sequencename || ' '
       || coalesce(last_value::text, 'unused')
  FROM pg_sequences
UNION ALL
SELECT 'default acl ' || coalesce(array_to_string(defaclacl, ','), '') FROM pg_default_acl
UNION ALL
SELECT 'database ' || coalesce(array_to_string(datacl, ','), '') || ' ' || datconnlimit::text
  FROM pg_database WHERE datname = current_database()
UNION ALL
SELECT 'setting ' || setrole::text || ' ' || array_to_string(setconfig, ',')
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
 WHERE d.datname = current_database()
"""

_TABLES = f"""
WITH ns AS ({_USER_SCHEMAS})
SELECT ns.nspname AS schema, c.relname AS name, c.relkind::text AS kind
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
"""

_ROUTINES = f"""
WITH ns AS ({_USER_SCHEMAS})
SELECT ns.nspname AS schema, p.proname AS name,
       pg_get_function_identity_arguments(p.oid) AS args
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
"""

_TYPES = f"""
WITH ns AS ({_USER_SCHEMAS})
SELECT ns.nspname AS schema, t.typname AS name
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r', 'm')
    OR (t.typtype = 'c' AND EXISTS (
        SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
"""

# An index by its table and its definition without its own name: a read model rebuilt beside the
# live one and swapped in keeps the indexes (and primary key) names of its rebuild twin.
_INDEXES = f"""
WITH ns AS ({_USER_SCHEMAS})
SELECT ns.nspname AS schema, c.relname AS name,
       replace(pg_get_indexdef(c.oid), ' INDEX ' || quote_ident(c.relname) || ' ON ', ' INDEX ON ')
         AS definition
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ns ON ns.oid = c.relnamespace
"""

_SEQUENCES = "SELECT schemaname, sequencename, start_value, last_value FROM pg_sequences"

_DROP_KIND = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
    "f": "FOREIGN TABLE",
}


def _quoted(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


async def catalog(conn: asyncpg.Connection) -> list[str]:
    """What a database's schema is made of (see `_CATALOG`), sorted: two databases with equal
    catalogs have the same schemas, tables, columns, indexes, routines, privileges and
    sequence positions."""
    return sorted(str(row[0]) for row in await conn.fetch(_CATALOG))


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    digest: str  # of its rows in the template (see `_digest`)
    rows: str  # its rows in the template, as a JSON array ('[]' for none)

    @property
    def quoted(self) -> str:
        return _quoted(self.schema, self.name)


def _digest(table: str) -> str:
    """SQL for a digest of the rows of `table` (quoted), equal for equal contents."""
    return f"(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {table} x)"


@dataclass(frozen=True)
class TemplateState:
    """What a reset restores, read once from the migrated template: its objects by kind, its
    tables with their rows, its sequences' positions, and its catalog."""

    relations: frozenset[tuple[str, str, str]]
    routines: frozenset[tuple[str, str, str]]
    types: frozenset[tuple[str, str]]
    indexes: frozenset[tuple[str, str, str]]
    schemas: frozenset[str]
    tables: tuple[Table, ...]
    sequences: tuple[tuple[str, str, int, int | None], ...]
    shape: tuple[str, ...]

    @property
    def changed_tables(self) -> str:
        """SQL for the names of the template's tables whose rows differ from the template's."""
        return " UNION ALL ".join(
            f"SELECT {i} WHERE {_digest(t.quoted)} <> '{t.digest}'"
            if t.rows != "[]"
            else f"SELECT {i} WHERE EXISTS (SELECT FROM {t.quoted})"
            for i, t in enumerate(self.tables)
        )

    @classmethod
    async def read(cls, url: str) -> TemplateState:
        conn = await asyncpg.connect(url)
        try:
            relations = await _relations(conn)
            tables = []
            for schema, name, kind in sorted(relations):
                if kind in ("r", "p"):
                    quoted = _quoted(schema, name)
                    tables.append(
                        Table(
                            schema,
                            name,
                            digest=await conn.fetchval(f"SELECT {_digest(quoted)}"),
                            rows=await conn.fetchval(
                                f"SELECT coalesce(json_agg(x), '[]') FROM {quoted} x"
                            ),
                        )
                    )
            return cls(
                relations=relations,
                routines=await _routines(conn),
                types=await _types(conn),
                indexes=await _indexes(conn),
                schemas=await _schemas(conn),
                tables=tuple(tables),
                sequences=tuple(
                    (r["schemaname"], r["sequencename"], r["start_value"], r["last_value"])
                    for r in await conn.fetch(_SEQUENCES)
                ),
                shape=tuple(await catalog(conn)),
            )
        finally:
            await conn.close()


async def _relations(conn: asyncpg.Connection) -> frozenset[tuple[str, str, str]]:
    return frozenset((r["schema"], r["name"], r["kind"]) for r in await conn.fetch(_TABLES))


async def _routines(conn: asyncpg.Connection) -> frozenset[tuple[str, str, str]]:
    return frozenset((r["schema"], r["name"], r["args"]) for r in await conn.fetch(_ROUTINES))


async def _indexes(conn: asyncpg.Connection) -> frozenset[tuple[str, str, str]]:
    return frozenset((r["schema"], r["name"], r["definition"]) for r in await conn.fetch(_INDEXES))


async def _types(conn: asyncpg.Connection) -> frozenset[tuple[str, str]]:
    return frozenset((r["schema"], r["name"]) for r in await conn.fetch(_TYPES))


async def _schemas(conn: asyncpg.Connection) -> frozenset[str]:
    return frozenset(str(r["nspname"]) for r in await conn.fetch(_USER_SCHEMAS))


class ResetFailed(Exception):
    """The database could not be brought back to the template's state."""


async def _close_sessions(admin: asyncpg.Connection, name: str) -> None:
    """End every other session on database `name`, waiting (up to 5 s each) until it is gone."""
    await admin.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )


async def _drop_extras(conn: asyncpg.Connection, template: TemplateState) -> None:
    for schema in sorted(await _schemas(conn) - template.schemas):
        await conn.execute(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE")
    extra = sorted(await _relations(conn) - template.relations)
    for kind in sorted({kind for _, _, kind in extra}):
        names = ", ".join(_quoted(schema, name) for schema, name, k in extra if k == kind)
        await conn.execute(f"DROP {_DROP_KIND[kind]} IF EXISTS {names} CASCADE")
    for schema, name, args in sorted(await _routines(conn) - template.routines):
        await conn.execute(f"DROP ROUTINE IF EXISTS {_quoted(schema, name)}({args}) CASCADE")
    for schema, name in sorted(await _types(conn) - template.types):
        await conn.execute(f"DROP TYPE IF EXISTS {_quoted(schema, name)} CASCADE")


async def _rename_indexes(conn: asyncpg.Connection, template: TemplateState) -> None:
    """Give back their template names to indexes that are the template's but for their name."""
    current = await _indexes(conn)
    names = {(schema, name) for schema, name, _ in current}
    loose = {(schema, definition): name for schema, name, definition in current - template.indexes}
    for schema, name, definition in sorted(template.indexes - current):
        other = loose.get((schema, definition))
        if other is not None and (schema, name) not in names:
            await conn.execute(f"ALTER INDEX {_quoted(schema, other)} RENAME TO {_quoted(name)}")


async def _changed(conn: asyncpg.Connection, template: TemplateState) -> list[Table]:
    if not template.tables:
        return []
    return [template.tables[row[0]] for row in await conn.fetch(template.changed_tables)]


async def _restore(conn: asyncpg.Connection, template: TemplateState) -> None:
    """Empty the tables that differ from the template's (and those whose foreign keys point at
    them), write back the template's rows where it had some, and set the sequences back."""
    changed = await _changed(conn, template)
    if changed:
        tables = ", ".join(t.quoted for t in changed)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        for table in await _changed(conn, template):
            await conn.execute(
                f"INSERT INTO {table.quoted}"
                f" SELECT * FROM json_populate_recordset(NULL::{table.quoted}, $1::json)",
                table.rows,
            )
    if template.sequences:
        await conn.execute(
            "SELECT "
            + ", ".join(
                f"setval('{_quoted(schema, name)}'::regclass, {start if last is None else last},"
                f" {last is not None})"
                for schema, name, start, last in template.sequences
            )
        )


async def reset_database(admin_url: str, name: str, template: TemplateState) -> None:
    """Bring database `name`, which nobody else uses, back to `template`'s state (see the
    module's docstring), or raise `ResetFailed` (the database is then in an unknown state)."""
    try:
        conn = await asyncpg.connect(
            with_database(admin_url, name),
            server_settings={"lock_timeout": RESET_LOCK_TIMEOUT},
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise ResetFailed(f"cannot connect to {name}: {exc}") from exc
    try:
        await conn.execute(f"ALTER DATABASE {_quoted(name)} RESET ALL")
        async with conn.transaction():
            await _drop_extras(conn, template)
            await _rename_indexes(conn, template)
            await _restore(conn, template)
        shape = tuple(await catalog(conn))
        unrestored = await _changed(conn, template)
    except asyncpg.PostgresError as exc:
        raise ResetFailed(f"cannot reset {name}: {exc}") from exc
    finally:
        await conn.close()
    if unrestored:
        raise ResetFailed(f"{name}: rows differ from the template's in {unrestored[0].name}")
    if shape != template.shape:
        differences = sorted(set(shape) ^ set(template.shape))[:5]
        raise ResetFailed(f"{name} differs from the template after a reset: {differences}")


@dataclass
class DatabasePool:
    """Fresh, migrated databases for a test session: a new clone of `template` when none is
    idle, and databases given back are reset and renamed (`give_back`) to serve again."""

    admin_url: str
    template: str
    prefix: str = "jt"
    idle: list[str] = field(default_factory=list)
    state: TemplateState | None = None
    failures: list[str] = field(default_factory=list)  # why resets failed, for a report

    async def take(self) -> str:
        """The URL of a database in the template's state, for one test."""
        if self.state is None:
            self.state = await TemplateState.read(with_database(self.admin_url, self.template))
        if self.idle:
            return with_database(self.admin_url, self.idle.pop())
        name = await create_database(self.admin_url, template=self.template, prefix=self.prefix)
        return with_database(self.admin_url, name)

    async def give_back(self, url: str) -> None:
        """Reset the database of `url` (from `take`) and keep it, renamed, for another test;
        drop it if it cannot be reset."""
        assert self.state is not None, "give back only what was taken"
        name = urlsplit(url).path.removeprefix("/")
        try:
            # renamed first, so that nothing still holding the URL reaches it while it is reset
            name = await self._rename(name)
            await reset_database(self.admin_url, name, self.state)
        except (ResetFailed, OSError, asyncpg.PostgresError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            await drop_database(self.admin_url, name)
            return
        self.idle.append(name)

    async def _rename(self, name: str) -> str:
        """End the sessions on database `name` and give it a new random name."""
        renamed = f"{self.prefix}_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(self.admin_url)
        try:
            await _close_sessions(admin, name)
            await admin.execute(f"ALTER DATABASE {_quoted(name)} RENAME TO {renamed}")
        finally:
            await admin.close()
        return renamed

    async def close(self) -> None:
        """Drop every idle database."""
        while self.idle:
            await drop_database(self.admin_url, self.idle.pop())
