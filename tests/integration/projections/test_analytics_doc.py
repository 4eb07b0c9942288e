"""Every example query in docs/analytics.md runs, as written, on SQLite and Postgres, over read
models that hold some activity, and answers rows."""

from __future__ import annotations

import re
import time
from pathlib import Path

from projections import catalog, registry
from projections.analytics import fold
from projections.rebuild import create_missing
from projections.tables import live
from sqldb import Database
from tests.integration.projections.activity import HOUR, MINUTE, Log, edit, joined, left
from tests.integration.projections.catalog_log import CatalogLog

DOC = Path(__file__).parents[3] / "docs" / "analytics.md"
BLOCK = re.compile(r"^```sql ?(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def examples(kind: str) -> list[str]:
    """The statements of the doc's SQL blocks for every database or for `kind`."""
    found = []
    for only, body in BLOCK.findall(DOC.read_text()):
        if only in ("", kind):
            found += [s.strip() for s in body.split(";") if s.strip()]
    return found


def test_the_doc_has_the_promised_examples() -> None:
    text = " ".join(examples("postgres")).lower()
    for table in ("analytics_hours", "analytics_days", "analytics_sessions", "projects"):
        assert table in text
    assert examples("postgres") != examples("sqlite")
    assert len(examples("sqlite")) == len(examples("postgres")) >= 6


async def test_every_example_query_runs_and_answers(db: Database) -> None:
    async with db.transaction() as conn:
        await create_missing(conn, db.kind, registry.TABLES)
        await conn.execute(
            "INSERT INTO projects (id, title, created_by, created_at, updated_at, version)"
            " VALUES ('p1', 'Night drive', 'ann', 0, 0, 2)"
        )
        await conn.execute(
            "INSERT INTO project_members (project_id, user_id, role, added_at)"
            " VALUES ('p1', 'ann', 'owner', 0)"
        )
        await conn.execute(
            "INSERT INTO doc_projects (project_id, title, lyrics_characters, lyrics_words,"
            " lyrics_lines, comments, schema_problems, version, updated_at)"
            " VALUES ('p1', 'Night drive', 0, 0, 0, 0, 1, 2, 0)"
        )
        await conn.execute(
            "INSERT INTO doc_tracks (project_id, id, position, name, volume_db, muted)"
            " VALUES ('p1', 't1', 0, 'Drums', -3, 0)"
        )
        await conn.execute(
            "INSERT INTO doc_updates (project_id, version, position, recorded_at, user_id,"
            " connection_id, node, changes) VALUES ('p1', 2, 2, 0, 'ann', 'c1', 'n1', 1)"
        )
        await conn.execute(
            'INSERT INTO doc_changes (project_id, version, seq, kind, path, summary, "count",'
            " \"before\", \"after\") VALUES ('p1', 2, 0, 'track.volume_db',"
            " 'tracks/t1/volume_db', 'set Drums volume from 0 dB to -3 dB', 0, '0', '-3')"
        )
    now = int(time.time() * 1000)
    log = Log()
    log.add("p1", now - 3 * HOUR, joined("ann", "n1", "c1"))
    log.add("p1", now - 3 * HOUR + MINUTE, edit("ann", "n1", "c1"))
    log.add("p1", now - 2 * HOUR, left("ann", "n1", "c1"))
    log.add("p1", now - HOUR, joined("bob", "n2", "c2"))
    log.add("p1", now - HOUR + 1, edit("bob", "n2", "c2", size=40))
    plays = CatalogLog()
    plays.publish("t1", now - HOUR)
    plays.play("t1", "device:d1", now - HOUR)
    async with db.transaction() as conn:
        await fold(live(registry.TABLES))(conn, log.recorded)
        await fold(live(registry.TABLES))(conn, plays.recorded)
        await catalog.fold(live(registry.TABLES))(conn, plays.recorded)
    for statement in examples(db.kind):
        rows = await db.fetch(statement)
        assert rows, statement
