"""The queries on the catalog read model (projections/catalog.py): a track, the browsing of
listed tracks (sorted by newest, most played or trending; by genre; by full-text search) with
keyset pagination, a user's tracks, a track's plays per day, playlists and favorites.

Pagination is by keyset: a page's cursor holds the sort value and the id of its last track, and
the next page starts strictly after them in (value, id) order, so tracks published meanwhile
neither repeat nor hide a track (a newer track sorts before the cursor). Counts that change
while someone pages (plays, trending) can move a track across a page boundary: the sort is as
of each page's reading."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from projections.catalog_plays import DAY_MS
from projections.tables import search_condition, search_words
from sqldb import Database, Row

Sort = Literal["new", "plays", "trending"]
SORTS: dict[str, str] = {"new": "published_at", "plays": "plays", "trending": "trending"}


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not hand out (or for another sort)."""


@dataclass(frozen=True, slots=True)
class TrackView:
    id: str
    project_id: str
    asset_id: str
    user_id: str
    title: str
    artists: list[str]
    genre: str
    visibility: str
    description: str | None
    cover_asset_id: str | None
    duration: float
    format: str
    published_at: int
    updated_at: int
    plays: int
    trending: int
    favorites: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "asset_id": self.asset_id,
            "user_id": self.user_id,
            "title": self.title,
            "artists": self.artists,
            "genre": self.genre,
            "visibility": self.visibility,
            "description": self.description,
            "cover_asset_id": self.cover_asset_id,
            "duration": self.duration,
            "format": self.format,
            "published_at": self.published_at,
            "updated_at": self.updated_at,
            "plays": self.plays,
            "trending": self.trending,
            "favorites": self.favorites,
        }


@dataclass(frozen=True, slots=True)
class PlaylistView:
    id: str
    user_id: str
    title: str
    public: bool
    created_at: int
    updated_at: int
    tracks: int  # how many it holds, published or not
    track_ids: list[str]  # in order; empty in a list of playlists (not read there)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "title": self.title,
            "public": self.public,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "tracks": self.tracks,
        }


_TRACK = (
    "t.track_id, t.project_id, t.asset_id, t.user_id, t.title, t.artists, t.genre,"
    " t.visibility, t.description, t.cover_asset_id, t.duration, t.format, t.published_at,"
    " t.updated_at, t.plays, t.trending, t.favorites"
)


def _track(row: Row) -> TrackView:
    return TrackView(
        row["track_id"],
        row["project_id"],
        row["asset_id"],
        row["user_id"],
        row["title"],
        json.loads(row["artists"]),
        row["genre"],
        row["visibility"],
        row["description"],
        row["cover_asset_id"],
        float(row["duration"]),
        row["format"],
        int(row["published_at"]),
        int(row["updated_at"]),
        int(row["plays"]),
        int(row["trending"]),
        int(row["favorites"]),
    )


def encode_cursor(sort: str, value: int, track_id: str) -> str:
    raw = json.dumps([sort, value, track_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[int, str]:
    try:
        kind, value, track_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor(cursor) from exc
    if kind != sort or not isinstance(value, int) or not isinstance(track_id, str):
        raise InvalidCursor(cursor)
    return value, track_id


class CatalogReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def published_with(self, asset_id: str) -> list[str]:
        """The ids of the published tracks whose audio (or cover) is the asset."""
        rows = await self._db.fetch(
            "SELECT track_id FROM catalog_tracks WHERE (asset_id = $1 OR cover_asset_id = $1)"
            " AND unpublished_at IS NULL ORDER BY track_id",
            asset_id,
        )
        return [str(r["track_id"]) for r in rows]

    async def track(self, track_id: str) -> TrackView | None:
        """A published track (public or unlisted); None if unknown or unpublished."""
        row = await self._db.fetchrow(
            f"SELECT {_TRACK} FROM catalog_tracks t"
            " WHERE t.track_id = $1 AND t.unpublished_at IS NULL",
            track_id,
        )
        return None if row is None else _track(row)

    async def browse(
        self,
        sort: Sort,
        limit: int,
        after: str | None = None,
        *,
        genre: str | None = None,
        q: str | None = None,
        user_id: str | None = None,
        unlisted: bool = False,
    ) -> tuple[list[TrackView], str | None]:
        """A page of published tracks by `sort` (largest first, then by id), and the next
        page's cursor: the listed ones (with `unlisted`, the unlisted ones too), of one genre,
        matching every word of `q`, or published by `user_id`."""
        column = SORTS[sort]
        where = ["t.unpublished_at IS NULL" if unlisted else "t.listed = 1"]
        args: list[Any] = []
        join = ""
        if genre is not None:
            args.append(genre.strip().lower())
            where.append(f"t.genre_key = ${len(args)}")
        if user_id is not None:
            args.append(user_id)
            where.append(f"t.user_id = ${len(args)}")
        if q is not None:
            words = search_words(q)
            if not words:
                return [], None
            join = " JOIN catalog_search ON catalog_search.track_id = t.track_id"
            where.append(
                search_condition(self._db.kind, "catalog_search", "body", words, len(args) + 1)
            )
            args.extend(words)
        if after is not None:
            value, track_id = decode_cursor(after, sort)
            args.extend((value, track_id))
            v, i = len(args) - 1, len(args)
            where.append(f"(t.{column} < ${v} OR (t.{column} = ${v} AND t.track_id < ${i}))")
        args.append(limit + 1)
        rows = await self._db.fetch(
            f"SELECT {_TRACK} FROM catalog_tracks t{join} WHERE {' AND '.join(where)}"
            f" ORDER BY t.{column} DESC, t.track_id DESC LIMIT ${len(args)}",
            *args,
        )
        views = [_track(r) for r in rows[:limit]]
        if len(rows) <= limit:
            return views, None
        last = views[-1]
        value = {"new": last.published_at, "plays": last.plays, "trending": last.trending}[sort]
        return views, encode_cursor(sort, value, last.id)

    async def days(self, track_id: str, until: int, days: int) -> list[dict[str, int]]:
        """The track's counted plays on each of the `days` UTC days up to the one holding
        `until` (epoch ms), oldest first; days without plays included, as 0."""
        last = until - until % DAY_MS
        first = last - (days - 1) * DAY_MS
        rows = await self._db.fetch(
            "SELECT day, plays FROM catalog_track_days WHERE track_id = $1 AND day >= $2"
            " AND day <= $3",
            track_id,
            first,
            last,
        )
        found = {int(r["day"]): int(r["plays"]) for r in rows}
        return [{"day": d, "plays": found.get(d, 0)} for d in range(first, last + 1, DAY_MS)]

    async def playlist(self, playlist_id: str) -> PlaylistView | None:
        """A playlist that was not deleted, with every track it holds in order (published or
        not: `tracks` gives the ones still published)."""
        row = await self._db.fetchrow(
            "SELECT playlist_id, user_id, title, public, created_at, updated_at"
            " FROM catalog_playlists WHERE playlist_id = $1 AND deleted_at IS NULL",
            playlist_id,
        )
        if row is None:
            return None
        entries = await self._db.fetch(
            "SELECT track_id FROM catalog_playlist_tracks WHERE playlist_id = $1 ORDER BY ord",
            playlist_id,
        )
        return PlaylistView(
            row["playlist_id"],
            row["user_id"],
            row["title"],
            bool(row["public"]),
            int(row["created_at"]),
            int(row["updated_at"]),
            len(entries),
            [e["track_id"] for e in entries],
        )

    async def playlist_tracks(self, playlist_id: str) -> list[TrackView]:
        """The playlist's tracks that are still published, in the playlist's order."""
        rows = await self._db.fetch(
            f"SELECT {_TRACK} FROM catalog_playlist_tracks p"
            " JOIN catalog_tracks t ON t.track_id = p.track_id"
            " WHERE p.playlist_id = $1 AND t.unpublished_at IS NULL ORDER BY p.ord",
            playlist_id,
        )
        return [_track(r) for r in rows]

    async def playlists_of(self, user_id: str, private: bool) -> list[PlaylistView]:
        """A user's playlists, newest first (with `private`, the private ones too)."""
        visible = "" if private else " AND p.public = 1"
        rows = await self._db.fetch(
            "SELECT p.playlist_id, p.user_id, p.title, p.public, p.created_at, p.updated_at,"
            " p.tracks FROM catalog_playlists p WHERE p.user_id = $1 AND p.deleted_at IS NULL"
            f"{visible} ORDER BY p.created_at DESC, p.playlist_id DESC",
            user_id,
        )
        return [
            PlaylistView(
                r["playlist_id"],
                r["user_id"],
                r["title"],
                bool(r["public"]),
                int(r["created_at"]),
                int(r["updated_at"]),
                int(r["tracks"]),
                [],
            )
            for r in rows
        ]

    async def favorites_of(
        self, user_id: str, limit: int, after: str | None = None
    ) -> tuple[list[TrackView], str | None]:
        """A page of the user's favorite tracks still published, latest favorite first."""
        args: list[Any] = [user_id]
        where = "f.user_id = $1 AND t.unpublished_at IS NULL"
        if after is not None:
            value, track_id = decode_cursor(after, "favorites")
            args.extend((value, track_id))
            where += " AND (f.added_at < $2 OR (f.added_at = $2 AND f.track_id < $3))"
        args.append(limit + 1)
        rows = await self._db.fetch(
            f"SELECT {_TRACK}, f.added_at AS favorited_at FROM catalog_favorites f"
            f" JOIN catalog_tracks t ON t.track_id = f.track_id WHERE {where}"
            f" ORDER BY f.added_at DESC, f.track_id DESC LIMIT ${len(args)}",
            *args,
        )
        views = [_track(r) for r in rows[:limit]]
        if len(rows) <= limit:
            return views, None
        return views, encode_cursor("favorites", int(rows[limit - 1]["favorited_at"]), views[-1].id)

    async def is_favorite(self, user_id: str, track_id: str) -> bool:
        found = await self._db.fetchval(
            "SELECT 1 FROM catalog_favorites WHERE user_id = $1 AND track_id = $2",
            user_id,
            track_id,
        )
        return found is not None
