"""`jacameno export TABLE`, in process, on SQLite and Postgres: every row of a read model, in key
order, as JSON lines or CSV, read in pages; only read-model tables."""

from __future__ import annotations

import csv
import io
import json

import pytest

from jacameno import cli, export_cli
from sqldb import open_database

TRACKS = 2_345  # more than two pages of the test's page size


async def _tracks(url: str) -> list[dict[str, object]]:
    db = await open_database(url)
    rows = [
        {
            "project_id": f"p{i % 3}",
            "id": f"t{i:05d}",
            "position": i,
            "name": f'Track, "{i}"\nline two',  # CSV quoting and newlines
            "kind": "audio",
            "color": None,
            "volume_db": -1.5,
            "pan": 0.25,
            "muted": 0,
            "solo": 1,
        }
        for i in range(TRACKS)
    ]
    try:
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO doc_tracks (project_id, id, position, name, kind, color, volume_db,"
                " pan, muted, solo) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                [tuple(row.values()) for row in rows],
            )
        table = export_cli.READ_MODELS["doc_tracks"]
        out = io.StringIO()
        assert await export_cli.export(db, table, "jsonl", out, page=1000) == TRACKS
        exported = [json.loads(line) for line in out.getvalue().splitlines()]
        out = io.StringIO()
        assert await export_cli.export(db, table, "csv", out, page=1000) == TRACKS
        header, *records = list(csv.reader(io.StringIO(out.getvalue())))
        assert tuple(header) == tuple(table.columns)
        assert [dict(zip(header, r, strict=True))["name"] for r in records] == [
            e["name"] for e in exported
        ]
    finally:
        await db.close()
    expected = sorted(rows, key=lambda r: (r["project_id"], r["id"]))
    assert [(e["project_id"], e["id"]) for e in exported] == [
        (r["project_id"], r["id"]) for r in expected
    ]
    return exported


async def test_export_streams_every_row_in_key_order_in_pages(database_url: str) -> None:
    exported = await _tracks(database_url)
    first = exported[0]
    assert first["name"] == 'Track, "0"\nline two'
    assert (first["volume_db"], first["pan"], first["solo"]) == (-1.5, 0.25, 1)


def test_export_command_refuses_tables_that_are_not_read_models(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", "projects", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == ""  # an empty read model: nothing, not an error
    for table in ("es_events", "users", "refresh_sessions"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["export", table, "--database-url", database_url])
        assert exit_.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
