"""The catalog fold alone: `python -m load.bench_catalog --fold`.

How many `track.played` events per second the catalog projection's fold applies on a fresh
database, without HTTP or the log in the way: `tracks` published tracks, then `plays` plays of
random tracks by random devices (one play every 20 ms of event time, so some listeners come back
within 30 minutes and some after), applied in batches of the runner's size, each batch in its
own transaction as the runner does. It says whether the read model can keep up with an ingestion
rate, whatever the HTTP side manages."""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.events import catalog as ev
from eventstore import NewEvent, RecordedEvent
from harness.databases import migrated_sqlite, postgres_database
from projections.catalog import TABLES, fold
from projections.rebuild import create_missing
from projections.runner import BATCH_SIZE
from projections.tables import live
from sqldb import open_database

START = datetime(2026, 11, 2, tzinfo=UTC)


def _recorded(position: int, stream: str, event: NewEvent, at_ms: int) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        stream=stream,
        version=1,
        type=event.type,
        data=event.data,
        metadata_json=json.dumps(event.metadata),
        recorded_at=START + timedelta(milliseconds=at_ms),
    )


def catalog_log(
    tracks: int, plays: int, devices: int
) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
    """The publications, then the plays."""
    published = []
    for n in range(tracks):
        track = ev.PublishedTrack(
            f"t{n}", "p", "a", "u", f"Track {n}", ["A"], "Test", "public", None, None, 1.0, "WAV"
        )
        published.append(
            _recorded(n + 1, ev.track_stream(track.track_id), ev.track_published(track), 0)
        )
    rng = random.Random(12)
    played = []
    for i in range(plays):
        track_id = f"t{rng.randrange(tracks)}"
        event = ev.track_played(f"device:d{rng.randrange(devices)}", actor=None)
        played.append(_recorded(tracks + i + 1, ev.track_stream(track_id), event, 1 + i * 20))
    return published, played


@contextlib.asynccontextmanager
async def _database(kind: str, dsn: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="jacameno-bench-catalog-") as folder:
            yield f"sqlite:///{migrated_sqlite(Path(folder))}"
        return
    async with postgres_database(dsn, migrate=True, prefix="jacameno_bench_catalog") as url:
        yield url


async def fold_rate(kind: str, dsn: str, tracks: int, plays: int, devices: int) -> dict[str, Any]:
    published, played = catalog_log(tracks, plays, devices)
    async with _database(kind, dsn) as url:
        db = await open_database(url)
        try:
            async with db.transaction() as conn:
                await create_missing(conn, db.kind, TABLES)
            apply = fold(live(TABLES))
            async with db.transaction() as conn:
                await apply(conn, published)
            started = time.perf_counter()
            for start in range(0, len(played), BATCH_SIZE):
                async with db.transaction() as conn:
                    await apply(conn, played[start : start + BATCH_SIZE])
            seconds = time.perf_counter() - started
            counted = int(await db.fetchval("SELECT SUM(plays) FROM catalog_tracks") or 0)
        finally:
            await db.close()
    return {
        "database": kind,
        "tracks": tracks,
        "plays": plays,
        "batch": BATCH_SIZE,
        "seconds": round(seconds, 3),
        "plays_per_second": round(plays / seconds, 1) if seconds else 0.0,
        "counted": counted,
    }
