"""The catalog fold on SQLite and Postgres, fed events with chosen times: the play-count rule
(once per listener, track and 30 minutes, by event time), trending over the log's clock,
playlists and favorites, and the same tables however the log is batched."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.events import catalog as ev
from domain.events import user_stream
from eventstore import RecordedEvent
from projections import analytics
from projections.catalog import TABLES, fold
from projections.catalog_plays import DAY_MS, MINUTE_MS
from projections.catalog_reads import CatalogReadModel
from projections.rebuild import create_missing
from projections.tables import live, qualified
from sqldb import Database
from tests.integration.projections.activity import EVENING
from tests.integration.projections.catalog_log import CatalogLog


async def fold_in(db: Database, recorded: list[RecordedEvent], batches: Iterable[int]) -> None:
    """Fold `recorded` into fresh live tables, in batches of the sizes given (cycled)."""
    async with db.transaction() as conn:
        for table in TABLES:
            await conn.execute(f"DROP TABLE IF EXISTS {qualified(db.kind, table.name)}")
        await create_missing(conn, db.kind, TABLES)
    apply = fold(live(TABLES))
    sizes = list(batches)
    start = 0
    step = 0
    while start < len(recorded):
        size = sizes[step % len(sizes)]
        async with db.transaction() as conn:
            await apply(conn, recorded[start : start + size])
        start += size
        step += 1


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    result = {}
    for table in TABLES:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        order = ", ".join(f'"{c}"' for c in table.key)
        rows = await db.fetch(f"SELECT {columns} FROM {table.name} ORDER BY {order}")
        result[table.name] = [tuple(r[c] for c in table.columns) for r in rows]
    return result


async def test_a_listener_counts_once_per_track_in_thirty_minutes(db: Database) -> None:
    log = CatalogLog()
    log.publish("t1", EVENING)
    log.publish("t2", EVENING)
    for minute in (0, 1, 29):  # a reload, and another just inside the window: one play
        log.play("t1", "user:u2", EVENING + minute * MINUTE_MS)
    log.play("t1", "user:u2", EVENING + 30 * MINUTE_MS)  # 30 minutes after the counted one
    log.play("t1", "user:u2", EVENING + 45 * MINUTE_MS)  # 15 after: not again
    log.play("t1", "device:d1", EVENING + MINUTE_MS)  # another listener, anonymous
    log.play("t1", "device:d2", EVENING + MINUTE_MS)
    log.play("t2", "user:u2", EVENING + 2 * MINUTE_MS)  # another track
    log.play("t9", "user:u2", EVENING + 2 * MINUTE_MS)  # no such track: not counted
    await fold_in(db, log.recorded, [100])
    reads = CatalogReadModel(db)
    one, two = await reads.track("t1"), await reads.track("t2")
    assert one is not None
    assert two is not None
    assert (one.plays, two.plays) == (4, 1)
    assert one.trending == 4


async def test_plays_of_an_unpublished_track_do_not_count(db: Database) -> None:
    log = CatalogLog()
    log.publish("t1", EVENING)
    log.play("t1", "user:u2", EVENING)
    log.track_event("t1", ev.TRACK_UNPUBLISHED, EVENING + MINUTE_MS)
    log.play("t1", "user:u3", EVENING + 2 * MINUTE_MS)
    await fold_in(db, log.recorded, [100])
    assert await CatalogReadModel(db).track("t1") is None
    rows = await db.fetch("SELECT plays, listed FROM catalog_tracks WHERE track_id = 't1'")
    assert [(int(r["plays"]), int(r["listed"])) for r in rows] == [(1, 0)]


async def test_trending_keeps_the_last_seven_days_of_the_logs_clock(db: Database) -> None:
    log = CatalogLog()
    log.publish("old", EVENING)
    log.publish("new", EVENING)
    log.play("old", "user:a", EVENING)
    log.play("old", "user:b", EVENING)
    log.play("new", "user:a", EVENING + 6 * DAY_MS)  # the window still holds day 0
    await fold_in(db, log.recorded, [100])
    reads = CatalogReadModel(db)
    old = await reads.track("old")
    assert old is not None
    assert old.trending == 2
    log.play("new", "user:a", EVENING + 7 * DAY_MS)  # a midnight later: day 0 leaves it
    await fold_in(db, log.recorded, [100])
    old, new = await reads.track("old"), await reads.track("new")
    assert old is not None
    assert new is not None
    assert (old.trending, old.plays, new.trending) == (0, 2, 2)
    days = await reads.days("old", EVENING + 7 * DAY_MS, 8)
    assert [d["plays"] for d in days] == [2, 0, 0, 0, 0, 0, 0, 0]


async def test_the_tables_do_not_depend_on_how_the_log_is_batched(db: Database) -> None:
    log = CatalogLog()
    for n in range(4):
        log.publish(f"t{n}", EVENING + n, title=f"Song {n}")
    for i in range(60):  # listeners coming back every 7 minutes, over midnight
        log.play(f"t{i % 4}", f"device:d{i % 5}", EVENING + i * 7 * MINUTE_MS)
        if i == 20:
            log.track_event("t1", ev.TRACK_UPDATED, EVENING + i * 7 * MINUTE_MS, title="Renamed")
        if i == 30:
            log.track_event("t2", ev.TRACK_UNPUBLISHED, EVENING + i * 7 * MINUTE_MS)
    user = user_stream("u2")
    log.add(user, EVENING, ev.event(ev.FAVORITE_ADDED, {"track_id": "t0"}, actor="u2"))
    log.add(user, EVENING, ev.event(ev.FAVORITE_ADDED, {"track_id": "t0"}, actor="u2"))
    log.add(user, EVENING, ev.event(ev.FAVORITE_ADDED, {"track_id": "t3"}, actor="u2"))
    log.add(user, EVENING, ev.event(ev.FAVORITE_REMOVED, {"track_id": "t3"}, actor="u2"))
    playlist = ev.playlist_stream("l1")
    created = {"playlist_id": "l1", "user_id": "u2", "title": "Mix", "public": True}
    log.add(playlist, EVENING, ev.event(ev.PLAYLIST_CREATED, created, actor="u2"))
    for track, index in (("t0", None), ("t1", None), ("t3", 0)):
        added = {"track_id": track, "index": index}
        log.add(playlist, EVENING, ev.event(ev.PLAYLIST_TRACK_ADDED, added, actor="u2"))
    removed = {"track_id": "t0"}
    log.add(playlist, EVENING, ev.event(ev.PLAYLIST_TRACK_REMOVED, removed, actor="u2"))
    order = {"track_ids": ["t1", "t3"]}
    log.add(playlist, EVENING, ev.event(ev.PLAYLIST_REORDERED, order, actor="u2"))

    await fold_in(db, log.recorded, [len(log.recorded)])
    whole = await snapshot(db)
    for sizes in ([1], [3, 7], [16]):
        await fold_in(db, log.recorded, sizes)
        assert await snapshot(db) == whole, sizes

    reads = CatalogReadModel(db)
    favorite = await reads.track("t0")
    assert favorite is not None
    assert favorite.favorites == 1
    mix = await reads.playlist("l1")
    assert mix is not None
    assert mix.track_ids == ["t1", "t3"]
    renamed = await reads.track("t1")
    assert renamed is not None
    assert renamed.title == "Renamed"
    found, _ = await reads.browse("new", 10, q="renam")
    assert [t.id for t in found] == ["t1"]


async def test_analytics_counts_every_play_per_track_and_day(db: Database) -> None:
    log = CatalogLog()
    log.publish("t1", EVENING)
    for minute in (0, 1, 2):  # one listener reloading: the catalog counts one, analytics three
        log.play("t1", "user:u2", EVENING + minute * MINUTE_MS)
    log.play("t1", "device:d1", EVENING + DAY_MS)
    async with db.transaction() as conn:
        await create_missing(conn, db.kind, analytics.TABLES)
    async with db.transaction() as conn:
        await analytics.fold(live(analytics.TABLES))(conn, log.recorded)
    rows = await db.fetch(
        "SELECT track_id, day, plays, signed_in, anonymous FROM analytics_play_days ORDER BY day"
    )
    day = EVENING - EVENING % DAY_MS
    columns = ("track_id", "day", "plays", "signed_in", "anonymous")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        ("t1", day, 3, 3, 0),
        ("t1", day + DAY_MS, 1, 0, 1),
    ]
