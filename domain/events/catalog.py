"""The streaming catalog's events: published tracks and their plays, playlists, favorites.

Data is a JSON object; metadata carries the acting `user_id` (none for an anonymous play) and,
where the request had one, its `request_id`. Folded by projections.catalog (docs/catalog.md).

On a track's stream `track-{id}`:

    track.published    {"track_id", "project_id", "asset_id", "user_id", "title", "artists",
                        "genre", "visibility", "description", "cover_asset_id", "duration",
                        "format"}      a project's asset made a track (visibility public|unlisted)
    track.updated      {some of "title", "artists", "genre", "visibility", "description",
                        "cover_asset_id"}  the fields given replace the track's
    track.unpublished  {}                 the track is gone from the catalog; its plays stay
    track.played       {"listener"}       a listener started the track: "user:{id}" signed in,
                                          "device:{id}" anonymous; whether it counts is the
                                          fold's decision (once per listener, track and 30 min)

On a playlist's stream `playlist-{id}`:

    playlist.created        {"playlist_id", "user_id", "title", "public"}
    playlist.updated        {some of "title", "public"}
    playlist.track_added    {"track_id", "index"}    inserted before `index` (or at the end)
    playlist.track_removed  {"track_id"}
    playlist.reordered      {"track_ids"}            the playlist's tracks in their new order
    playlist.deleted        {}

On a user's stream `user-{id}`:

    favorite.added     {"track_id"}
    favorite.removed   {"track_id"}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eventstore import NewEvent

TRACK_STREAM_PREFIX = "track-"
PLAYLIST_STREAM_PREFIX = "playlist-"

TRACK_PUBLISHED = "track.published"
TRACK_UPDATED = "track.updated"
TRACK_UNPUBLISHED = "track.unpublished"
TRACK_PLAYED = "track.played"
PLAYLIST_CREATED = "playlist.created"
PLAYLIST_UPDATED = "playlist.updated"
PLAYLIST_TRACK_ADDED = "playlist.track_added"
PLAYLIST_TRACK_REMOVED = "playlist.track_removed"
PLAYLIST_REORDERED = "playlist.reordered"
PLAYLIST_DELETED = "playlist.deleted"
FAVORITE_ADDED = "favorite.added"
FAVORITE_REMOVED = "favorite.removed"

TRACK_EVENT_TYPES = frozenset({TRACK_PUBLISHED, TRACK_UPDATED, TRACK_UNPUBLISHED, TRACK_PLAYED})
PLAYLIST_EVENT_TYPES = frozenset(
    {
        PLAYLIST_CREATED,
        PLAYLIST_UPDATED,
        PLAYLIST_TRACK_ADDED,
        PLAYLIST_TRACK_REMOVED,
        PLAYLIST_REORDERED,
        PLAYLIST_DELETED,
    }
)
FAVORITE_EVENT_TYPES = frozenset({FAVORITE_ADDED, FAVORITE_REMOVED})
CATALOG_EVENT_TYPES = TRACK_EVENT_TYPES | PLAYLIST_EVENT_TYPES | FAVORITE_EVENT_TYPES

PUBLIC = "public"
UNLISTED = "unlisted"
VISIBILITIES = (PUBLIC, UNLISTED)
# The fields a track.updated may carry.
TRACK_FIELDS = ("title", "artists", "genre", "visibility", "description", "cover_asset_id")

USER_LISTENER = "user:"
DEVICE_LISTENER = "device:"


def track_stream(track_id: str) -> str:
    return f"{TRACK_STREAM_PREFIX}{track_id}"


def playlist_stream(playlist_id: str) -> str:
    return f"{PLAYLIST_STREAM_PREFIX}{playlist_id}"


def is_track_stream(stream: str) -> bool:
    return stream.startswith(TRACK_STREAM_PREFIX)


def is_playlist_stream(stream: str) -> bool:
    return stream.startswith(PLAYLIST_STREAM_PREFIX)


def track_of(stream: str) -> str:
    """The track id of a track's stream."""
    return stream.removeprefix(TRACK_STREAM_PREFIX)


def playlist_of(stream: str) -> str:
    """The playlist id of a playlist's stream."""
    return stream.removeprefix(PLAYLIST_STREAM_PREFIX)


def listener(user_id: str | None, device_id: str | None) -> str:
    """Who listens, as a play records it: the signed-in user, else the anonymous device
    (ValueError: neither)."""
    if user_id:
        return USER_LISTENER + user_id
    if device_id:
        return DEVICE_LISTENER + device_id
    raise ValueError("a play needs a user or a device id")


@dataclass(frozen=True, slots=True)
class PublishedTrack:
    """A track as its track.published records it."""

    track_id: str
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


# One encoder for every event: json.dumps with these options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(data: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(data).encode()


def _object(data: bytes, kind: str) -> dict[str, Any]:
    try:
        value = json.loads(data) if data else {}
    except ValueError as exc:
        raise ValueError(f"not a {kind} payload: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"not a {kind} payload")
    return value


def _metadata(actor: str | None, request_id: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if actor is not None:
        metadata["user_id"] = actor
    if request_id is not None:
        metadata["request_id"] = request_id
    return metadata


def event(
    kind: str, data: Mapping[str, Any], *, actor: str | None, request_id: str | None = None
) -> NewEvent:
    """A catalog event of type `kind` with `data`, made by `actor` (None: an anonymous play)."""
    if kind not in CATALOG_EVENT_TYPES:
        raise ValueError(f"not a catalog event type: {kind}")
    return NewEvent(kind, _encode(data), _metadata(actor, request_id))


def track_published(track: PublishedTrack, *, request_id: str | None = None) -> NewEvent:
    return event(TRACK_PUBLISHED, asdict(track), actor=track.user_id, request_id=request_id)


def read_track_published(data: bytes) -> PublishedTrack:
    """The track a track.published records (ValueError: not one)."""
    fields = _object(data, TRACK_PUBLISHED)
    try:
        track = PublishedTrack(**fields)
    except TypeError as exc:
        raise ValueError(f"not a {TRACK_PUBLISHED} payload: {exc}") from exc
    if not isinstance(track.artists, list) or track.visibility not in VISIBILITIES:
        raise ValueError(f"not a {TRACK_PUBLISHED} payload")
    return track


def read_track_updated(data: bytes) -> dict[str, Any]:
    """The fields a track.updated replaces (unknown keys are dropped; ValueError: not one)."""
    fields = _object(data, TRACK_UPDATED)
    if "visibility" in fields and fields["visibility"] not in VISIBILITIES:
        raise ValueError(f"not a {TRACK_UPDATED} payload: visibility")
    return {k: v for k, v in fields.items() if k in TRACK_FIELDS}


def track_played(listened_by: str, *, actor: str | None, request_id: str | None = None) -> NewEvent:
    return track_plays([(listened_by, actor)], request_id=request_id)[0]


def track_plays(
    plays: Sequence[tuple[str, str | None]], *, request_id: str | None = None
) -> list[NewEvent]:
    """A track.played per (listener, actor), in order, made in one request. The plays of one
    actor share one metadata object, which the store encodes once per append (a batch of
    plays is mostly that encoding otherwise)."""
    shared: dict[str | None, dict[str, Any]] = {}
    events = []
    for listened_by, actor in plays:
        metadata = shared.get(actor)
        if metadata is None:
            metadata = shared[actor] = _metadata(actor, request_id)
        events.append(NewEvent(TRACK_PLAYED, _encode({"listener": listened_by}), metadata))
    return events


# A track.played as `track_plays` writes it, `{"listener":"…"}`, with no escape in the string
# (and no raw control character, which JSON would refuse).
_PLAYED = re.compile(rb'\{"listener":"([^"\\\x00-\x1f]*)"\}')


def read_track_played(data: bytes) -> str:
    """The listener of a track.played (ValueError: not one). The folds read thousands a second:
    a payload in the form `track_plays` writes is matched rather than parsed (a quarter of the
    time); any other is parsed."""
    value: object
    written = _PLAYED.fullmatch(data)
    if written is not None:
        try:
            value = written.group(1).decode()
        except UnicodeDecodeError as exc:
            raise ValueError(f"not a {TRACK_PLAYED} payload: {exc}") from exc
    else:
        value = _object(data, TRACK_PLAYED).get("listener")
    if not isinstance(value, str) or not value.startswith((USER_LISTENER, DEVICE_LISTENER)):
        raise ValueError(f"not a {TRACK_PLAYED} payload")
    return value


def read(data: bytes, kind: str) -> dict[str, Any]:
    """The JSON object of any catalog event (ValueError: not an object)."""
    return _object(data, kind)
