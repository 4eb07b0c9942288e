"""`jacameno projections status|retry`, in process, on SQLite and Postgres: they report what the
serving nodes' runners wrote, without following the log themselves."""

from __future__ import annotations

import asyncio

import pytest

from jacameno import cli, projections_cli
from sqldb import open_database


async def stalled(url: str) -> None:
    db = await open_database(url)
    try:
        await db.execute(
            "INSERT INTO projection_checkpoints (name, position, updated_at, failing_since,"
            " last_error) VALUES ('projects', 0, 0, 1700000000000, 'ValueError: no')"
        )
    finally:
        await db.close()


def test_status_prints_a_row_per_projection_with_a_stall_other_nodes_wrote(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["projections", "--database-url", database_url, "status"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == list(projections_cli.COLUMNS)
    assert [row.split() for row in rows] == [
        [name, "stopped", "0", "0", "0", "0.0", "-", "0"]
        for name in ("projects", "document", "analytics")
    ]
    asyncio.run(stalled(database_url))
    assert cli.main(["projections", "--database-url", database_url, "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["projects", "failing"]
    assert lines[2].split()[:2] == ["document", "stopped"]
    assert lines[3].split()[:2] == ["analytics", "stopped"]
    assert lines[4] == "projects: failing since 2023-11-14 22:13:20 UTC: ValueError: no"


def test_retry_reports_what_it_applied_and_refuses_an_unknown_name(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["projections", "--database-url", database_url, "retry", "projects"]) == 0
    assert capsys.readouterr().out == "projects: 0 applied, 0 still failing\n"
    assert cli.main(["projections", "--database-url", database_url, "retry", "nope"]) == 2
    assert "no projection named 'nope'" in capsys.readouterr().err
