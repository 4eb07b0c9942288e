"""`jacameno projections status|retry`, in process, on SQLite and Postgres: they report what the
serving nodes' runners wrote, without following the log themselves."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
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
        for name in ("projects", "document", "analytics", "assets", "ai_jobs", "catalog")
    ]
    asyncio.run(stalled(database_url))
    assert cli.main(["projections", "--database-url", database_url, "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["projects", "failing"]
    assert lines[2].split()[:2] == ["document", "stopped"]
    assert lines[3].split()[:2] == ["analytics", "stopped"]
    assert lines[4].split()[:2] == ["assets", "stopped"]
    assert lines[5].split()[:2] == ["ai_jobs", "stopped"]
    assert lines[6].split()[:2] == ["catalog", "stopped"]
    assert lines[7] == "projects: failing since 2023-11-14 22:13:20 UTC: ValueError: no"


def test_retry_reports_what_it_applied_and_refuses_an_unknown_name(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["projections", "--database-url", database_url, "retry", "projects"]) == 0
    assert capsys.readouterr().out == "projects: 0 applied, 0 still failing\n"
    assert cli.main(["projections", "--database-url", database_url, "retry", "nope"]) == 2
    assert "no projection named 'nope'" in capsys.readouterr().err


def test_rebuild_swaps_in_a_model_built_from_the_log_and_refuses_an_unknown_name(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["projections", "--database-url", database_url, "rebuild", "projects"]) == 0
    assert capsys.readouterr().out == "projects: rebuilt up to position 0 and swapped in\n"
    assert cli.main(["projections", "--database-url", database_url, "rebuild", "nope"]) == 2
    assert "no projection named 'nope'" in capsys.readouterr().err


async def _as(url: str, role: str, sql: str) -> list[str]:
    conn = await asyncpg.connect(url, user=role)
    try:
        return [str(r[0]) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_analyst_role_reads_the_read_models_and_nothing_else(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        code = await asyncio.to_thread(
            cli.main, ["analyst", "--database-url", database_url, "grant", role]
        )
        assert code == 0
        assert capsys.readouterr().out == f"{role} may now read the read models\n"
        await admin.execute(
            "INSERT INTO readmodels.projects (id, title, created_by, created_at, updated_at,"
            " version) VALUES ('p', 'Song', 'u', 0, 0, 1)"
        )
        assert await _as(database_url, role, "SELECT title FROM projects") == ["Song"]
        # a table made after the grant (a rebuild swaps in new tables) is readable too
        code = await asyncio.to_thread(
            cli.main, ["projections", "--database-url", database_url, "rebuild", "projects"]
        )
        assert code == 0
        assert await _as(database_url, role, "SELECT count(*) FROM doc_tracks") == ["0"]
        assert await _as(database_url, role, "SELECT count(*) FROM projects") == ["0"]
        for table in (
            "es_events",
            "users",
            "refresh_sessions",
            "projection_checkpoints",
            "blame_checkpoints",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _as(database_url, role, f"SELECT 1 FROM public.{table}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as(database_url, role, "DELETE FROM projects")
        code = await asyncio.to_thread(
            cli.main, ["analyst", "--database-url", database_url, "revoke", role]
        )
        assert code == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as(database_url, role, "SELECT 1 FROM readmodels.projects")
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def test_grant_refuses_a_missing_role_and_sqlite(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["analyst", "--database-url", database_url, "grant", "no_such_role_x"]) == 2
    err = capsys.readouterr().err
    assert ("no database role named" in err) or ("SQLite has no database roles" in err)
