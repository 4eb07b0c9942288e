"""Plays, folded: which `track.played` events count, and the counts they add (docs/catalog.md,
"Play counts").

A play counts when its listener (a signed-in user, or an anonymous device) has no counted play
of the same track in the 30 minutes before it, by the events' recorded times; a play of a track
that is not published (never, or no longer) does not count. The decision reads only the events
folded before it, in log order, so a rebuild from position 0 gives the same counts however the
log is batched. Trending is the counted plays of the last seven UTC days of the log's clock (the
latest play folded), not of the wall clock, for the same reason.

The fold is set-based: a run of plays is decided in Python over the listeners' last counted
times read in one query, then written with a few multi-row statements.

What is remembered of a listener (`catalog_listens`) is dropped a day after their last counted
play: by then it can decide nothing, unless a play is recorded more than 23.5 hours before a
play that precedes it in the log, which only a broken clock does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from domain.events.catalog import read_track_played, track_of
from eventstore import RecordedEvent
from projections.tables import Names, chunks, fetch_where_in, insert_rows
from sqldb import Connection

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
PLAY_WINDOW_MS = 30 * MINUTE_MS
TRENDING_DAYS = 7
LISTEN_MEMORY_MS = DAY_MS
CLOCK = "plays"


@dataclass(frozen=True, slots=True)
class Play:
    position: int
    track_id: str
    listener: str
    at: int  # epoch milliseconds

    @property
    def key(self) -> str:
        return f"{self.track_id} {self.listener}"

    @classmethod
    def of(cls, event: RecordedEvent) -> Play:
        at = int(event.recorded_at.timestamp() * 1000)
        return cls(event.position, track_of(event.stream), read_track_played(event.data), at)


@dataclass(slots=True)
class Counted:
    """What a run of plays adds: counted plays per track and per (track, day), each track's
    latest counted play, and each listener's new last counted time."""

    tracks: dict[str, int] = field(default_factory=dict)
    days: dict[tuple[str, int], int] = field(default_factory=dict)
    latest: dict[str, int] = field(default_factory=dict)
    listens: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.tracks.values())


def decide(plays: Iterable[Play], last_counted: dict[str, int], live: set[str]) -> Counted:
    """Count `plays` (in log order) given each listener's last counted play of a track
    (`last_counted`, by `Play.key`) and the tracks published now (`live`)."""
    counted = Counted()
    for play in plays:
        if play.track_id not in live:
            continue
        last = counted.listens.get(play.key, last_counted.get(play.key))
        if last is not None and play.at - last < PLAY_WINDOW_MS:
            continue
        counted.listens[play.key] = play.at
        counted.tracks[play.track_id] = counted.tracks.get(play.track_id, 0) + 1
        day = (play.track_id, play.at - play.at % DAY_MS)
        counted.days[day] = counted.days.get(day, 0) + 1
        counted.latest[play.track_id] = max(counted.latest.get(play.track_id, 0), play.at)
    return counted


def trending_since(clock: int) -> int:
    """The first day (epoch ms) of the trending window when the log's clock reads `clock`."""
    return clock - clock % DAY_MS - (TRENDING_DAYS - 1) * DAY_MS


async def fold_plays(conn: Connection, names: Names, events: Sequence[RecordedEvent]) -> None:
    """Fold a run of track.played events (with no other catalog event between them)."""
    plays = [Play.of(e) for e in events]
    tracks, listens = names["catalog_tracks"], names["catalog_listens"]
    live = {
        r["track_id"]
        for r in await fetch_where_in(
            conn,
            f"SELECT track_id FROM {tracks} WHERE unpublished_at IS NULL"
            " AND track_id IN ({marks})",
            sorted({p.track_id for p in plays}),
        )
    }
    last_counted = {
        r["listen_key"]: int(r["last_counted_at"])
        for r in await fetch_where_in(
            conn,
            f"SELECT listen_key, last_counted_at FROM {listens} WHERE listen_key IN ({{marks}})",
            sorted({p.key for p in plays if p.track_id in live}),
        )
    }
    counted = decide(plays, last_counted, live)
    old_clock = await _clock(conn, names)
    clock = max([old_clock, *(p.at for p in plays)])
    await insert_rows(
        conn,
        listens,
        ("listen_key", "last_counted_at"),
        list(counted.listens.items()),
        upsert=("listen_key",),
    )
    await insert_rows(
        conn,
        names["catalog_track_days"],
        ("track_id", "day", "plays"),
        [(track, day, n) for (track, day), n in counted.days.items()],
        upsert=("track_id", "day"),
        sets={"plays": '{t}."plays" + excluded."plays"'},
    )
    await conn.executemany(
        f"UPDATE {tracks} SET plays = plays + $2, last_played_at = CASE WHEN last_played_at"
        " IS NULL OR last_played_at < $3 THEN $3 ELSE last_played_at END WHERE track_id = $1",
        [(track, n, counted.latest[track]) for track, n in counted.tracks.items()],
    )
    if clock != old_clock:
        await insert_rows(
            conn, names["catalog_clock"], ("name", "at"), [(CLOCK, clock)], upsert=("name",)
        )
        await conn.execute(
            f"DELETE FROM {listens} WHERE last_counted_at < $1", clock - LISTEN_MEMORY_MS
        )
    await _trend(conn, names, set(counted.tracks), old_clock, clock)


async def _clock(conn: Connection, names: Names) -> int:
    value = await conn.fetchval(f"SELECT at FROM {names['catalog_clock']} WHERE name = $1", CLOCK)
    return 0 if value is None else int(value)


async def _trend(
    conn: Connection, names: Names, played: set[str], old_clock: int, clock: int
) -> None:
    """Recompute the trending count of the tracks played now and of those with plays on the
    days that just left the window (the clock moved past a midnight)."""
    days, tracks = names["catalog_track_days"], names["catalog_tracks"]
    since, before = trending_since(clock), trending_since(old_clock)
    affected = set(played)
    if since > before:
        affected.update(
            r["track_id"]
            for r in await conn.fetch(
                f"SELECT DISTINCT track_id FROM {days} WHERE day >= $1 AND day < $2",
                before,
                since,
            )
        )
    ordered = sorted(affected)
    for start, end in chunks(len(ordered), 10_000):
        part = ordered[start:end]
        marks = ", ".join(f"${i + 2}" for i in range(len(part)))
        await conn.execute(
            f"UPDATE {tracks} SET trending = COALESCE((SELECT SUM(d.plays) FROM {days} d"
            f" WHERE d.track_id = {tracks}.track_id AND d.day >= $1), 0)"
            f" WHERE track_id IN ({marks})",
            since,
            *part,
        )
