"""JSON Schemas of the catalog's requests and answers (jacameno/api/catalog.py and
jacameno/api/playlists.py); the handlers validate with them and the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any

from domain.events.catalog import VISIBILITIES
from jacameno.http.schemas import TITLE, Schema, nullable, obj, text

UUID: Schema = {"type": "string", "format": "uuid"}
MILLIS: Schema = {"type": "integer", "description": "epoch milliseconds"}
COUNT: Schema = {"type": "integer", "minimum": 0}

ARTISTS: Schema = {"type": "array", "items": text(1, 100), "minItems": 1, "maxItems": 20}
GENRE = text(1, 50)
VISIBILITY: Schema = {"type": "string", "enum": list(VISIBILITIES)}
DESCRIPTION = text(0, 5000)
# An anonymous listener's id, chosen by its client and kept (e.g. in local storage).
DEVICE_ID: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,128}$"}

_EDITABLE: dict[str, Schema] = {
    "title": TITLE,
    "artists": ARTISTS,
    "genre": GENRE,
    "visibility": VISIBILITY,
    "description": nullable(DESCRIPTION),
    "cover_asset_id": nullable(UUID),
}

NEW_TRACK = obj(
    {"project_id": UUID, "asset_id": UUID, **_EDITABLE},
    ("project_id", "asset_id", "title", "artists", "genre", "visibility"),
)
UPDATE_TRACK = obj(_EDITABLE, minProperties=1)

TRACK: Schema = obj(
    {
        "id": UUID,
        "project_id": UUID,
        "asset_id": UUID,
        "user_id": {"type": "string", "description": "who published it"},
        "title": {"type": "string"},
        "artists": {"type": "array", "items": {"type": "string"}},
        "genre": {"type": "string"},
        "visibility": VISIBILITY,
        "description": nullable({"type": "string"}),
        "cover_asset_id": nullable({"type": "string"}),
        "duration": {"type": "number", "description": "seconds"},
        "format": {"type": "string"},
        "published_at": MILLIS,
        "updated_at": MILLIS,
        "plays": {**COUNT, "description": "counted plays (once per listener per 30 minutes)"},
        "trending": {**COUNT, "description": "counted plays in the last 7 days"},
        "favorites": COUNT,
        "audio_url": {"type": "string", "description": "where its audio streams from"},
    },
    (
        "id",
        "project_id",
        "asset_id",
        "user_id",
        "title",
        "artists",
        "genre",
        "visibility",
        "description",
        "cover_asset_id",
        "duration",
        "format",
        "published_at",
        "updated_at",
        "plays",
        "trending",
        "favorites",
        "audio_url",
    ),
)


def page(items: str, schema: Schema) -> Schema:
    return obj(
        {
            items: {"type": "array", "items": schema},
            "next": nullable({"type": "string", "description": "the next page's `after`"}),
        },
        (items, "next"),
    )


TRACK_PAGE = page("tracks", TRACK)

PLAY = obj({"device_id": DEVICE_ID})
PLAY_ACCEPTED = obj(
    {"track_id": UUID, "position": {"type": "integer", "description": "the play's log position"}},
    ("track_id", "position"),
)
MAX_PLAYS = 500
PLAY_MANY = obj(
    {
        "plays": {
            "type": "array",
            "items": obj({"track_id": UUID, "device_id": DEVICE_ID}, ("track_id",)),
            "minItems": 1,
            "maxItems": MAX_PLAYS,
        }
    },
    ("plays",),
)
PLAYS_ACCEPTED = obj(
    {"plays": {"type": "array", "items": PLAY_ACCEPTED, "description": "in the request's order"}},
    ("plays",),
)
PLAYS = obj(
    {
        "track_id": UUID,
        "plays": COUNT,
        "trending": COUNT,
        "days": {
            "type": "array",
            "items": obj({"day": MILLIS, "plays": COUNT}, ("day", "plays")),
        },
    },
    ("track_id", "plays", "trending", "days"),
)

NEW_PLAYLIST = obj({"title": TITLE, "public": {"type": "boolean"}}, ("title",))
UPDATE_PLAYLIST = obj(
    {
        "title": TITLE,
        "public": {"type": "boolean"},
        "track_ids": {
            "type": "array",
            "items": UUID,
            "maxItems": 1000,
            "description": "the playlist's tracks in their new order (each once)",
        },
    },
    minProperties=1,
)
ADD_TO_PLAYLIST = obj(
    {
        "track_id": UUID,
        "index": {"type": "integer", "minimum": 0, "description": "before this place; the end"},
    },
    ("track_id",),
)
_PLAYLIST_FIELDS: dict[str, Any] = {
    "id": UUID,
    "user_id": {"type": "string"},
    "title": {"type": "string"},
    "public": {"type": "boolean"},
    "created_at": MILLIS,
    "updated_at": MILLIS,
}
PLAYLIST_SUMMARY = obj({**_PLAYLIST_FIELDS, "tracks": COUNT}, (*_PLAYLIST_FIELDS, "tracks"))
PLAYLIST = obj(
    {
        **_PLAYLIST_FIELDS,
        "tracks": {
            "type": "array",
            "items": TRACK,
            "description": "its tracks still published, in order",
        },
    },
    (*_PLAYLIST_FIELDS, "tracks"),
)
PLAYLISTS = obj({"playlists": {"type": "array", "items": PLAYLIST_SUMMARY}}, ("playlists",))
