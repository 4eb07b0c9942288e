"""A read model's tables, declared in code: the runner creates them, and builds a copy of them
beside the live ones when it rebuilds a projection (projections/rebuild.py), so their DDL is
written once here rather than in a migration per shape.

A column's type is `text`, `bigint`, `smallint` or `double`, with ` not null` where it may not be
empty; the primary key and the other indexes are lists of columns. On Postgres the tables live in
the `readmodels` schema (the `jacameno-sql` pool finds them through its search_path; analysts are
granted exactly that schema); SQLite has one namespace.

A table with `search` (a text column) is full-text searchable on that column: on Postgres an
ordinary table with a GIN index on `to_tsvector('simple', column)`; on SQLite an FTS5 virtual
table (its other columns UNINDEXED, no key enforced: a fold deletes before it inserts; its shadow
tables `<name>_data`, ... belong to it). `search_condition` spells the match for either.

A fold writes through `Names`: the logical table name to the physical one, which is the table
itself when following the log and its `__rebuild` twin while a rebuild builds beside it."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqldb import READ_MODELS_SCHEMA, Connection, Kind, Row

SCHEMA = READ_MODELS_SCHEMA  # Postgres only
REBUILD_SUFFIX = "__rebuild"

Names = Mapping[str, str]

_TYPES: dict[str, dict[str, str]] = {
    "postgres": {
        "text": "TEXT",
        "bigint": "BIGINT",
        "smallint": "SMALLINT",
        "double": "DOUBLE PRECISION",
    },
    "sqlite": {"text": "TEXT", "bigint": "BIGINT", "smallint": "SMALLINT", "double": "REAL"},
}


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    indexes: Sequence[tuple[str, ...]] = field(default=())
    search: str | None = None

    def __post_init__(self) -> None:
        if self.search is not None and (self.columns.get(self.search) or "-").split()[0] != "text":
            raise ValueError(f"{self.name}: the search column must be a text column")
        for column, spelled in self.columns.items():
            kind = spelled.removesuffix(" not null")
            if kind not in _TYPES["postgres"]:
                raise ValueError(f"{self.name}.{column}: unknown column type {spelled!r}")
        for columns in (self.key, *self.indexes):
            unknown = set(columns) - set(self.columns)
            if unknown:
                raise ValueError(f"{self.name}: index on unknown columns {sorted(unknown)}")

    def types(self, kind: Kind) -> dict[str, str]:
        """Each column's type as the database reports it (information_schema, PRAGMA)."""
        spelled = _TYPES[kind]
        if self.search is not None and kind == "sqlite":
            return dict.fromkeys(self.columns, "")  # FTS5 columns have no declared type
        reported = {"DOUBLE PRECISION": "double precision"} if kind == "postgres" else {}
        result = {}
        for column, declared in self.columns.items():
            name = spelled[declared.removesuffix(" not null")]
            result[column] = reported.get(name, name.lower() if kind == "postgres" else name)
        return result

    def create(self, kind: Kind, physical: str) -> list[str]:
        """The statements that create the table as `physical` (if it does not exist yet), with
        its indexes. Index names carry a random token: a rebuilt table keeps its index names
        when it is renamed into place, and the next rebuild must not collide with them."""
        spelled = _TYPES[kind]
        table = qualified(kind, physical)
        if self.search is not None and kind == "sqlite":
            unindexed = [
                f'"{c}"' + ("" if c == self.search else " UNINDEXED") for c in self.columns
            ]
            # remove_diacritics 0: the same words match as with Postgres' 'simple' config
            return [
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5({', '.join(unindexed)},"
                " tokenize = 'unicode61 remove_diacritics 0')"
            ]
        columns = [
            f'"{column}" {spelled[declared.removesuffix(" not null")]}'
            + (" NOT NULL" if declared.endswith(" not null") else "")
            for column, declared in self.columns.items()
        ]
        key = ", ".join(f'"{c}"' for c in self.key)
        token = secrets.token_hex(4)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)},"
            f" CONSTRAINT {physical}_pk_{token} PRIMARY KEY ({key}))"
        ]
        for number, index in enumerate(self.indexes):
            name = f"{physical}_ix{number}_{token}"
            cols = ", ".join(f'"{c}"' for c in index)
            statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
        if self.search is not None:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {physical}_fts_{token} ON {table}"
                f" USING GIN (to_tsvector('simple', \"{self.search}\"))"
            )
        return statements


def search_words(text: str, most: int = 8) -> list[str]:
    """The words of a search, lowercased: runs of letters and digits (everything else separates
    words, as both databases' tokenizers do), at most `most` of them."""
    return re.findall(r"[^\W_]+", text.lower())[:most]


def search_condition(kind: Kind, table: str, column: str, words: Sequence[str], first: int) -> str:
    """The condition that row `table` (an alias) matches every one of `words` (letters and
    digits only: see `search_words`) as a word or a word's beginning, the words being the
    parameters from `$first` on. Postgres uses the column's GIN index, SQLite its FTS5 table
    (`table` must then be the FTS5 table's own name)."""
    if kind == "postgres":
        query = " || ' & ' || ".join(f"${first + i} || ':*'" for i in range(len(words)))
        return f"to_tsvector('simple', {table}.\"{column}\") @@ to_tsquery('simple', {query})"
    query = " || ' AND ' || ".join(f"'\"' || ${first + i} || '\"*'" for i in range(len(words)))
    return f"{table} MATCH ({query})"


def qualified(kind: Kind, physical: str) -> str:
    return f"{SCHEMA}.{physical}" if kind == "postgres" else physical


def live(tables: Sequence[Table]) -> dict[str, str]:
    return {t.name: t.name for t in tables}


def rebuilding(tables: Sequence[Table]) -> dict[str, str]:
    return {t.name: t.name + REBUILD_SUFFIX for t in tables}


def declared(tables: Sequence[Table], kind: Kind) -> dict[str, dict[str, str]]:
    """The tables' columns as the database reports them (for the schema tests)."""
    return {t.name: t.types(kind) for t in tables}


# Postgres takes at most 32,767 parameters in a statement, SQLite (since 3.32) 32,766.
MAX_PARAMETERS = 30_000


async def insert_rows(
    conn: Connection,
    physical: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    upsert: tuple[str, ...] = (),
    sets: Mapping[str, str] | None = None,
) -> None:
    """Insert `rows` with as few statements as the parameter limit allows (one multi-row
    INSERT per chunk rather than one statement per row); with `upsert` (the key columns), a
    row whose key exists replaces its other columns, or, with `sets`, sets each column named
    there to its expression (`{t}` stands for the stored row's table, `excluded` for the new
    row: `{"n": '{t}.n + excluded.n'}` adds)."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    conflict = ""
    if upsert:
        keys = ", ".join(f'"{c}"' for c in upsert)
        if sets is None:
            sets = {c: f'excluded."{c}"' for c in columns if c not in upsert}
        updates = ", ".join(f'"{c}" = {e.format(t=physical)}' for c, e in sets.items())
        conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    width = len(columns)
    per_statement = max(1, MAX_PARAMETERS // width)
    for start, end in chunks(len(rows), per_statement):
        await conn.execute(
            f"INSERT INTO {physical} ({names}) VALUES {_values(width, end - start)}{conflict}",
            *[value for row in rows[start:end] for value in row],
        )


async def update_rows(
    conn: Connection,
    table: Table,
    physical: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    where: Sequence[str],
) -> None:
    """Change one stored row of `table` per row of `rows`, which gives the new values of
    `columns`, then the values the stored row holds in `where`'s columns (its key, and what
    the caller last saw of it): if any matches no stored row (another writer moved it on, or
    removed it), `RowCountError`, which rolls the transaction back. A chunk of rows per
    statement, as `insert_rows`; the values go as the columns' types (Postgres gives the
    parameters of a VALUES list no type of its own) and must be of them."""
    if not rows:
        return
    spelled = (*columns, *where)
    width = len(spelled)
    types = tuple(_TYPES["postgres"][table.columns[c].removesuffix(" not null")] for c in spelled)
    # VALUES names its columns column1, column2, ... on both databases
    sets = ", ".join(f'"{c}" = v.column{i + 1}' for i, c in enumerate(columns))
    match = " AND ".join(
        f'{physical}."{c}" = v.column{len(columns) + i + 1}' for i, c in enumerate(where)
    )
    per_statement = max(1, MAX_PARAMETERS // width)
    for start, end in chunks(len(rows), per_statement):
        await conn.execute_changing(
            end - start,
            f"UPDATE {physical} SET {sets}"
            f" FROM (VALUES {_values(width, end - start, types)}) AS v WHERE {match}",
            *[value for row in rows[start:end] for value in row],
        )


@functools.lru_cache(maxsize=256)
def _values(width: int, rows: int, types: tuple[str, ...] = ()) -> str:
    """`($1, ..., $width), ...` for `rows` rows (chunks come in a few sizes: made once each);
    with `types` (SQL types, one per column), each placeholder as `CAST($n AS type)`."""

    def mark(n: int, column: int) -> str:
        return f"CAST(${n} AS {types[column]})" if types else f"${n}"

    return ", ".join(
        "(" + ", ".join(mark(i * width + j + 1, j) for j in range(width)) + ")" for i in range(rows)
    )


def chunks(count: int, most: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering `count` items, each a power of two long and at most `most`:
    a statement has one of a few shapes whatever the batch, so the database's prepared statement
    caches (asyncpg's, SQLite's) keep hitting instead of preparing a new shape per row count."""
    ranges = []
    start = 0
    while start < count:
        size = min(1 << ((count - start).bit_length() - 1), 1 << (most.bit_length() - 1))
        ranges.append((start, start + size))
        start += size
    return ranges


async def delete_where_in(
    conn: Connection, physical: str, column: str, values: Sequence[Any]
) -> None:
    """Delete the rows whose `column` is one of `values`, a chunk of values per statement
    (statements that return nothing: in an SQLite transaction they wait for its next hop to the
    writer thread, sqldb.sqlite)."""
    for sql, chunk in _where_in(f'DELETE FROM {physical} WHERE "{column}" IN ({{marks}})', values):
        await conn.execute(sql, *chunk)


async def fetch_where_in(conn: Connection, sql: str, values: Sequence[Any]) -> list[Row]:
    """`sql` with `{marks}` standing for the placeholders of `values`, run a chunk at a time."""
    rows: list[Row] = []
    for chunk_sql, chunk in _where_in(sql, values):
        rows.extend(await conn.fetch(chunk_sql, *chunk))
    return rows


def _where_in(sql: str, values: Sequence[Any]) -> Iterator[tuple[str, Sequence[Any]]]:
    """`sql` and its arguments for each chunk of `values` (`{marks}`: their placeholders): one
    statement up to `IN_LIST` values. In an SQLite transaction each read is a hop to the
    writer thread, so a read is not split where the parameters allow it whole."""
    for chunk in in_list_chunks(values):
        marks, padded = in_list(chunk)
        yield sql.format(marks=marks), padded


IN_LIST = 1 << (MAX_PARAMETERS.bit_length() - 1)  # the most values `in_list` takes: 16,384


def in_list_chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in pieces of at most `IN_LIST`, each for one `in_list` (none if empty)."""
    for start in range(0, len(values), IN_LIST):
        yield values[start : start + IN_LIST]


def in_list(values: Sequence[Any], first: int = 1) -> tuple[str, list[Any]]:
    """The placeholders (`$first`, ...) of an IN list of `values` (at most `IN_LIST` of them),
    and its arguments: `values` padded to a power of two with its last value (a list that
    names a value twice matches the same rows), so that a statement has one of a few shapes
    whatever the count and the statement caches (asyncpg's, SQLite's) keep hitting."""
    if not values:
        raise ValueError("an IN list of no values")
    if len(values) > IN_LIST:
        raise ValueError(f"an IN list of more than {IN_LIST} values")
    size = 1 << (len(values) - 1).bit_length()
    padded = [*values, *[values[-1]] * (size - len(values))]
    return ", ".join(f"${first + i}" for i in range(size)), padded
