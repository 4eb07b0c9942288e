"""`jacameno export TABLE --format csv|jsonl`: a read model's rows to standard output, for
analysts who want them outside the database. Only read-model tables (the projects and the
documents' tables, `docs/analytics.md`), never the log, accounts or sessions. Rows are read in
pages in the order of the table's key (keyset pagination: each page starts after the last key
seen), so a table of any size streams out without being held in memory, and each page is written
before the next is read."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from typing import Any, TextIO

from jacameno.settings import Settings
from projections.registry import TABLES
from projections.tables import Table
from sqldb import Database

FORMATS = ("jsonl", "csv")
PAGE = 1000


READ_MODELS: dict[str, Table] = {t.name: t for t in TABLES}


def add(commands: Any) -> None:
    """Add `export TABLE` to the `jacameno` command."""
    parser = commands.add_parser("export", help="stream a read model's rows to standard output")
    parser.add_argument("table", choices=sorted(READ_MODELS), help="the read-model table")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="default jsonl")
    parser.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jacameno.bootstrap.core import database

    async def go() -> None:
        async with database(settings) as db:
            await export(db, READ_MODELS[args.table], args.format, sys.stdout)

    asyncio.run(go())
    return 0


def _quoted(name: str) -> str:
    return f'"{name}"'  # some columns are SQL keywords ("key", "offset")


async def export(db: Database, table: Table, fmt: str, out: TextIO, page: int = PAGE) -> int:
    """Write every row of `table` to `out` as JSON lines or CSV (with a header); the count."""
    names = tuple(table.columns)
    columns = ", ".join(_quoted(c) for c in names)
    order = ", ".join(_quoted(k) for k in table.key)
    after = "({}) > ({})".format(order, ", ".join(f"${i + 1}" for i in range(len(table.key))))
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(names)
    last: tuple[Any, ...] | None = None
    count = 0
    while True:
        where = "" if last is None else f" WHERE {after}"
        sql = f"SELECT {columns} FROM {_quoted(table.name)}{where} ORDER BY {order} LIMIT {page}"
        rows = await db.fetch(sql, *(last or ()))
        for row in rows:
            values = [row[c] for c in names]
            if writer is not None:
                writer.writerow(values)
            else:
                out.write(json.dumps(dict(zip(names, values, strict=True))) + "\n")
        out.flush()
        count += len(rows)
        if len(rows) < page:
            return count
        last = tuple(rows[-1][k] for k in table.key)
