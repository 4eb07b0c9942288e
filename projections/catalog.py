"""The streaming catalog read model: its tables and the fold that keeps them
(`catalog_projection`). Its queries are in projections/catalog_reads.py, the play-count rule in
projections/catalog_plays.py; docs/catalog.md describes every table for analysts.

It folds the catalog's events (domain.events.catalog: tracks and their plays, playlists,
favorites); what a project's assets are is the `assets` read model's (projections/assets.py).
Everything it holds is a function of the events folded, in log order,
never of the wall clock or of how the log was batched: a rebuild from position 0 equals the
model built incrementally."""

from __future__ import annotations

import json
from typing import Any

from domain.events import user_of
from domain.events.catalog import (
    CATALOG_EVENT_TYPES,
    FAVORITE_ADDED,
    FAVORITE_REMOVED,
    PLAYLIST_CREATED,
    PLAYLIST_DELETED,
    PLAYLIST_REORDERED,
    PLAYLIST_TRACK_ADDED,
    PLAYLIST_TRACK_REMOVED,
    PLAYLIST_UPDATED,
    PUBLIC,
    TRACK_PLAYED,
    TRACK_PUBLISHED,
    TRACK_UNPUBLISHED,
    TRACK_UPDATED,
    playlist_of,
    read,
    read_track_published,
    read_track_updated,
    track_of,
)
from eventstore import RecordedEvent
from projections.catalog_plays import fold_plays
from projections.runner import Apply, Projection
from projections.tables import Names, Table
from sqldb import Connection

CATALOG = "catalog"

_TRACK_COLUMNS = {
    "track_id": "text not null",
    "project_id": "text not null",
    "asset_id": "text not null",
    "user_id": "text not null",  # who published it
    "title": "text not null",
    "artists": "text not null",  # a JSON array of names
    "genre": "text not null",
    "genre_key": "text not null",  # the genre lowercased: what `genre=` matches
    "visibility": "text not null",  # public | unlisted
    "listed": "smallint not null",  # 1: public and published, so browsed and searched
    "description": "text",
    "cover_asset_id": "text",
    "duration": "double not null",  # seconds, from the asset's header
    "format": "text not null",
    "published_at": "bigint not null",
    "updated_at": "bigint not null",
    "unpublished_at": "bigint",  # NULL: published
    "plays": "bigint not null",  # counted plays, ever (catalog_plays.py)
    "trending": "bigint not null",  # counted plays in the last 7 days of the log's clock
    "favorites": "bigint not null",
    "last_played_at": "bigint",  # the latest counted play
}

TABLES = (
    Table(
        "catalog_tracks",
        _TRACK_COLUMNS,
        key=("track_id",),
        indexes=[
            ("listed", "published_at", "track_id"),
            ("listed", "plays", "track_id"),
            ("listed", "trending", "track_id"),
            ("genre_key", "listed", "published_at"),
            ("user_id", "published_at"),
        ],
    ),
    # The words of each listed track (title, artists, genre, description), full-text indexed.
    Table(
        "catalog_search",
        {"track_id": "text not null", "body": "text not null"},
        key=("track_id",),
        search="body",
    ),
    Table(
        "catalog_track_days",
        {"track_id": "text not null", "day": "bigint not null", "plays": "bigint not null"},
        key=("track_id", "day"),
        indexes=[("day",)],
    ),
    # Each listener's last counted play of a track, by "{track_id} {listener}".
    Table(
        "catalog_listens",
        {"listen_key": "text not null", "last_counted_at": "bigint not null"},
        key=("listen_key",),
        indexes=[("last_counted_at",)],
    ),
    Table("catalog_clock", {"name": "text not null", "at": "bigint not null"}, key=("name",)),
    Table(
        "catalog_playlists",
        {
            "playlist_id": "text not null",
            "user_id": "text not null",
            "title": "text not null",
            "public": "smallint not null",
            "created_at": "bigint not null",
            "updated_at": "bigint not null",
            "deleted_at": "bigint",
            "tracks": "bigint not null",
        },
        key=("playlist_id",),
        indexes=[("user_id", "created_at")],
    ),
    Table(
        "catalog_playlist_tracks",
        {
            "playlist_id": "text not null",
            "track_id": "text not null",
            "ord": "bigint not null",  # 0, 1, ...: the track's place in the playlist
            "added_at": "bigint not null",
        },
        key=("playlist_id", "track_id"),
        indexes=[("playlist_id", "ord"), ("track_id",)],
    ),
    Table(
        "catalog_favorites",
        {"user_id": "text not null", "track_id": "text not null", "added_at": "bigint not null"},
        key=("user_id", "track_id"),
        indexes=[("user_id", "added_at"), ("track_id",)],
    ),
)


_UPDATABLE = (
    "title",
    "artists",
    "genre",
    "genre_key",
    "visibility",
    "listed",
    "description",
    "cover_asset_id",
    "updated_at",
    "unpublished_at",
)


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


def search_body(row: dict[str, Any]) -> str:
    """The words a track is found by."""
    artists = " ".join(json.loads(row["artists"]))
    return " ".join(
        part for part in (row["title"], artists, row["genre"], row["description"] or "") if part
    )


class CatalogFold:
    """The fold into the tables `names` gives (the live ones, or their rebuild twins). Runs of
    plays go to catalog_plays.py in one piece; the other events are few and each depends on
    the rows before it: a statement or a few each."""

    def __init__(self, names: Names) -> None:
        self._n = names

    async def __call__(self, conn: Connection, events: list[RecordedEvent]) -> None:
        plays: list[RecordedEvent] = []
        for event in events:
            if event.type == TRACK_PLAYED:
                plays.append(event)
                continue
            if plays:
                await fold_plays(conn, self._n, plays)
                plays = []
            await self._one(conn, event)
        if plays:
            await fold_plays(conn, self._n, plays)

    async def _one(self, conn: Connection, event: RecordedEvent) -> None:
        at = _millis(event)
        if event.type in (TRACK_PUBLISHED, TRACK_UPDATED, TRACK_UNPUBLISHED):
            await self._track(conn, event, at)
        elif event.type in (FAVORITE_ADDED, FAVORITE_REMOVED):
            await self._favorite(conn, event, at)
        else:
            await self._playlist(conn, event, at)

    async def _track(self, conn: Connection, event: RecordedEvent, at: int) -> None:
        tracks, track_id = self._n["catalog_tracks"], track_of(event.stream)
        if event.type == TRACK_PUBLISHED:
            t = read_track_published(event.data)
            await conn.execute(
                f"INSERT INTO {tracks} (track_id, project_id, asset_id, user_id, title, artists,"
                " genre, genre_key, visibility, listed, description, cover_asset_id, duration,"
                " format, published_at, updated_at, plays, trending, favorites) VALUES ($1, $2,"
                " $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 0, 0, 0)"
                " ON CONFLICT (track_id) DO NOTHING",
                track_id,
                t.project_id,
                t.asset_id,
                t.user_id,
                t.title,
                json.dumps(t.artists, ensure_ascii=False),
                t.genre,
                t.genre.strip().lower(),
                t.visibility,
                int(t.visibility == PUBLIC),
                t.description,
                t.cover_asset_id,
                float(t.duration),
                t.format,
                at,
            )
        else:
            row = await conn.fetchrow(
                f"SELECT * FROM {tracks} WHERE track_id = $1 AND unpublished_at IS NULL", track_id
            )
            if row is None:  # an update or unpublish of a track that is gone: nothing left
                return
            current = {c: row[c] for c in _TRACK_COLUMNS}
            if event.type == TRACK_UPDATED:
                changes = read_track_updated(event.data)
                if "artists" in changes:
                    changes["artists"] = json.dumps(changes["artists"], ensure_ascii=False)
                current.update(changes)
                current["genre_key"] = str(current["genre"]).strip().lower()
                current["listed"] = int(current["visibility"] == PUBLIC)
            else:
                current["unpublished_at"], current["listed"] = at, 0
            current["updated_at"] = at
            names = _UPDATABLE
            sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(names))
            await conn.execute(
                f"UPDATE {tracks} SET {sets} WHERE track_id = $1",
                track_id,
                *(current[c] for c in names),
            )
        await self._index(conn, track_id)

    async def _index(self, conn: Connection, track_id: str) -> None:
        """The track's words in the search table while it is listed, and only then."""
        search, tracks = self._n["catalog_search"], self._n["catalog_tracks"]
        await conn.execute(f"DELETE FROM {search} WHERE track_id = $1", track_id)
        row = await conn.fetchrow(
            f"SELECT title, artists, genre, description FROM {tracks}"
            " WHERE track_id = $1 AND listed = 1",
            track_id,
        )
        if row is not None:
            body = search_body({c: row[c] for c in ("title", "artists", "genre", "description")})
            await conn.execute(
                f"INSERT INTO {search} (track_id, body) VALUES ($1, $2)", track_id, body
            )

    async def _favorite(self, conn: Connection, event: RecordedEvent, at: int) -> None:
        favorites, tracks = self._n["catalog_favorites"], self._n["catalog_tracks"]
        user_id, track_id = user_of(event.stream), str(read(event.data, event.type)["track_id"])
        held = await conn.fetchval(
            f"SELECT 1 FROM {favorites} WHERE user_id = $1 AND track_id = $2", user_id, track_id
        )
        if event.type == FAVORITE_ADDED and held is None:
            await conn.execute(
                f"INSERT INTO {favorites} (user_id, track_id, added_at) VALUES ($1, $2, $3)",
                user_id,
                track_id,
                at,
            )
            step = 1
        elif event.type == FAVORITE_REMOVED and held is not None:
            await conn.execute(
                f"DELETE FROM {favorites} WHERE user_id = $1 AND track_id = $2", user_id, track_id
            )
            step = -1
        else:
            return
        await conn.execute(
            f"UPDATE {tracks} SET favorites = favorites + $2 WHERE track_id = $1", track_id, step
        )

    async def _playlist(self, conn: Connection, event: RecordedEvent, at: int) -> None:
        playlists, entries = self._n["catalog_playlists"], self._n["catalog_playlist_tracks"]
        playlist_id, data = playlist_of(event.stream), read(event.data, event.type)
        if event.type == PLAYLIST_CREATED:
            await conn.execute(
                f"INSERT INTO {playlists} (playlist_id, user_id, title, public, created_at,"
                " updated_at, tracks) VALUES ($1, $2, $3, $4, $5, $5, 0)"
                " ON CONFLICT (playlist_id) DO NOTHING",
                playlist_id,
                str(data["user_id"]),
                str(data["title"]),
                int(bool(data["public"])),
                at,
            )
            return
        count = await conn.fetchval(
            f"SELECT tracks FROM {playlists} WHERE playlist_id = $1 AND deleted_at IS NULL",
            playlist_id,
        )
        if count is None:  # an edit of a deleted or unknown playlist: nothing to change
            return
        count = int(count)
        if event.type == PLAYLIST_UPDATED:
            if "title" in data:
                await conn.execute(
                    f"UPDATE {playlists} SET title = $2 WHERE playlist_id = $1",
                    playlist_id,
                    str(data["title"]),
                )
            if "public" in data:
                await conn.execute(
                    f"UPDATE {playlists} SET public = $2 WHERE playlist_id = $1",
                    playlist_id,
                    int(bool(data["public"])),
                )
        elif event.type == PLAYLIST_TRACK_ADDED:
            track_id = str(data["track_id"])
            if await self._place(conn, playlist_id, track_id) is None:
                index = data.get("index")
                index = count if not isinstance(index, int) else max(0, min(index, count))
                await conn.execute(
                    f"UPDATE {entries} SET ord = ord + 1 WHERE playlist_id = $1 AND ord >= $2",
                    playlist_id,
                    index,
                )
                await conn.execute(
                    f"INSERT INTO {entries} (playlist_id, track_id, ord, added_at)"
                    " VALUES ($1, $2, $3, $4)",
                    playlist_id,
                    track_id,
                    index,
                    at,
                )
                count += 1
        elif event.type == PLAYLIST_TRACK_REMOVED:
            track_id = str(data["track_id"])
            place = await self._place(conn, playlist_id, track_id)
            if place is not None:
                await conn.execute(
                    f"DELETE FROM {entries} WHERE playlist_id = $1 AND track_id = $2",
                    playlist_id,
                    track_id,
                )
                await conn.execute(
                    f"UPDATE {entries} SET ord = ord - 1 WHERE playlist_id = $1 AND ord > $2",
                    playlist_id,
                    place,
                )
                count -= 1
        elif event.type == PLAYLIST_REORDERED:
            await self._reorder(conn, playlist_id, [str(t) for t in data["track_ids"]])
        elif event.type == PLAYLIST_DELETED:
            await conn.execute(f"DELETE FROM {entries} WHERE playlist_id = $1", playlist_id)
            await conn.execute(
                f"UPDATE {playlists} SET deleted_at = $2 WHERE playlist_id = $1", playlist_id, at
            )
            count = 0
        await conn.execute(
            f"UPDATE {playlists} SET tracks = $2, updated_at = $3 WHERE playlist_id = $1",
            playlist_id,
            count,
            at,
        )

    async def _place(self, conn: Connection, playlist_id: str, track_id: str) -> int | None:
        value = await conn.fetchval(
            f"SELECT ord FROM {self._n['catalog_playlist_tracks']}"
            " WHERE playlist_id = $1 AND track_id = $2",
            playlist_id,
            track_id,
        )
        return None if value is None else int(value)

    async def _reorder(self, conn: Connection, playlist_id: str, order: list[str]) -> None:
        """The tracks named in `order` take its order; any other track (the order was decided
        on an older playlist) keeps its relative place after them."""
        entries = self._n["catalog_playlist_tracks"]
        rows = await conn.fetch(
            f"SELECT track_id FROM {entries} WHERE playlist_id = $1 ORDER BY ord", playlist_id
        )
        present = [r["track_id"] for r in rows]
        named = [t for t in dict.fromkeys(order) if t in set(present)]
        final = named + [t for t in present if t not in set(named)]
        await conn.executemany(
            f"UPDATE {entries} SET ord = $3 WHERE playlist_id = $1 AND track_id = $2",
            [(playlist_id, track_id, i) for i, track_id in enumerate(final)],
        )


def fold(names: Names) -> Apply:
    return CatalogFold(names)


def catalog_projection() -> Projection:
    return Projection(
        name=CATALOG,
        event_types=CATALOG_EVENT_TYPES,
        fold=fold,
        tables=TABLES,
    )
