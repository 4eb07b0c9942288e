"""`/api/tracks`: the streaming catalog's tracks (publish, browse, search, update, unpublish),
their plays and favorites, and `/api/users/{id}/tracks`. Commands go through
jacameno.catalog.service; reads answer from the `catalog` read model, so counts trail the log by
the projection's lag (docs/catalog.md).

Reading the catalog and playing a track need no account: without a bearer token the request is
anonymous (limited per client address), with one it must be valid. A play from an anonymous
listener names its device (`device_id`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from jacameno.accounts import User
from jacameno.api import catalog_schemas as s
from jacameno.api.assets import AssetServices, asset_response
from jacameno.catalog.errors import CatalogError, Conflict, Invalid, NotAllowed, NotFound
from jacameno.catalog.service import Catalog
from jacameno.http import schemas
from jacameno.http.endpoint import Authenticate, Call, Operation, Query
from jacameno.http.errors import ApiError, conflict, forbidden, not_found, rate_limited
from jacameno.ratelimit import RateLimiter
from projections.catalog_reads import SORTS, InvalidCursor, TrackView

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class CatalogServices:
    """What the catalog routes need: the commands and reads, for the requests that may be
    anonymous the bearer check and a per-address limit of `per_minute`, and the assets' reads
    and blobs behind a track's audio."""

    catalog: Catalog
    authenticate: Authenticate
    limiter: RateLimiter
    per_minute: int
    audio: AssetServices


CatalogCall = Call[CatalogServices]


def translate(exc: CatalogError) -> ApiError:
    if isinstance(exc, NotFound):
        return not_found(exc.what)
    if isinstance(exc, NotAllowed):
        return forbidden(str(exc))
    if isinstance(exc, Invalid):
        return ApiError(422, exc.code, str(exc))
    if isinstance(exc, Conflict):
        return conflict(exc.code, str(exc))
    return ApiError(400, "bad_request", str(exc))


async def caller(call: CatalogCall, cost: int = 1) -> User | None:
    """The signed-in caller of an operation that may be anonymous: None without a bearer token
    (the client address is then rate limited, the request counting as `cost` requests), 401
    with a bad one."""
    if "authorization" in call.request.headers:
        user = await call.services.authenticate(call.request)
        call.user = user
        return user
    address = call.request.client.host if call.request.client else "unknown"
    services = call.services
    retry = await services.limiter.hit(f"catalog:ip:{address}", services.per_minute, 60, cost)
    if retry:
        raise rate_limited(retry)
    return None


def _limit(call: CatalogCall) -> int:
    return min(int(call.query.get("limit", DEFAULT_PAGE)) or 1, MAX_PAGE)


def track_json(view: TrackView) -> dict[str, Any]:
    """A track as the API answers it: the read model's fields and where its audio streams."""
    return {**view.public(), "audio_url": f"/api/tracks/{view.id}/audio"}


def _page(views: list[TrackView], after: str | None) -> Response:
    return JSONResponse({"tracks": [track_json(v) for v in views], "next": after})


async def publish(call: CatalogCall) -> Response:
    b = call.body
    try:
        view = await call.services.catalog.publish(
            call.me.id,
            b["project_id"],
            b["asset_id"],
            title=b["title"],
            artists=b["artists"],
            genre=b["genre"],
            visibility=b["visibility"],
            description=b.get("description"),
            cover_asset_id=b.get("cover_asset_id"),
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return JSONResponse(track_json(view), status_code=201)


async def browse(call: CatalogCall) -> Response:
    await caller(call)
    q = call.query
    try:
        views, after = await call.services.catalog.reads.browse(
            q.get("sort", "new"), _limit(call), q.get("after"), genre=q.get("genre"), q=q.get("q")
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", "the cursor is not one this server gave") from exc
    return _page(views, after)


async def user_tracks(call: CatalogCall) -> Response:
    me = await caller(call)
    user_id = call.uuid("user_id", "user")
    try:
        views, after = await call.services.catalog.reads.browse(
            "new",
            _limit(call),
            call.query.get("after"),
            user_id=user_id,
            unlisted=me is not None and me.id == user_id,
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", "the cursor is not one this server gave") from exc
    return _page(views, after)


async def get_track(call: CatalogCall) -> Response:
    await caller(call)
    try:
        view = await call.services.catalog.track(call.uuid("track_id", "track"))
    except CatalogError as exc:
        raise translate(exc) from exc
    return JSONResponse(track_json(view))


async def update_track(call: CatalogCall) -> Response:
    track_id = call.uuid("track_id", "track")
    try:
        view = await call.services.catalog.update(call.me.id, track_id, call.body)
    except CatalogError as exc:
        raise translate(exc) from exc
    return JSONResponse(track_json(view))


async def unpublish(call: CatalogCall) -> Response:
    try:
        await call.services.catalog.unpublish(call.me.id, call.uuid("track_id", "track"))
    except CatalogError as exc:
        raise translate(exc) from exc
    return Response(status_code=204)


async def play(call: CatalogCall) -> Response:
    me = await caller(call)
    track_id = call.uuid("track_id", "track")
    device = call.body.get("device_id")
    if me is None and device is None:
        raise ApiError(422, "device_required", "an anonymous play needs a device_id", ["device_id"])
    try:
        position = await call.services.catalog.play(track_id, None if me is None else me.id, device)
    except CatalogError as exc:
        raise translate(exc) from exc
    return JSONResponse({"track_id": track_id, "position": position}, status_code=202)


async def play_many(call: CatalogCall) -> Response:
    """Several plays in one request (a player sending what it played while offline, a relay
    of many listeners' plays): each recorded as POST /api/tracks/{id}/plays records it; an
    anonymous request counts as one request per play against its address's limit."""
    wanted: list[dict[str, Any]] = call.body["plays"]
    me = await caller(call, cost=len(wanted))
    plays = []
    for n, item in enumerate(wanted):
        device = item.get("device_id")
        if me is None and device is None:
            raise ApiError(
                422,
                "device_required",
                "an anonymous play needs a device_id",
                [f"plays/{n}/device_id"],
            )
        plays.append((_track_id(item["track_id"]), None if me is None else me.id, device))
    try:
        positions = await call.services.catalog.play_many(plays)
    except CatalogError as exc:
        raise translate(exc) from exc
    answer = [{"track_id": t, "position": p} for (t, _, _), p in zip(plays, positions, strict=True)]
    return JSONResponse({"plays": answer}, status_code=202)


def _track_id(text: str) -> str:
    """A track id as the catalog spells it (canonical UUID); one spelled otherwise names no
    track, so it is passed on as it is and refused as unknown."""
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        return text
    return canonical if canonical == text else text


async def plays(call: CatalogCall) -> Response:
    await caller(call)
    catalog = call.services.catalog
    days = min(int(call.query.get("days", 30)) or 1, MAX_DAYS)
    try:
        view = await catalog.track(call.uuid("track_id", "track"))
    except CatalogError as exc:
        raise translate(exc) from exc
    series = await catalog.reads.days(view.id, int(time.time() * 1000), days)
    body = {"track_id": view.id, "plays": view.plays, "trending": view.trending, "days": series}
    return JSONResponse(body)


async def audio(call: CatalogCall) -> Response:
    await caller(call)
    audio = call.services.audio
    try:
        track = await call.services.catalog.track(call.uuid("track_id", "track"))
    except CatalogError as exc:
        raise translate(exc) from exc
    view = await audio.assets.reads.asset(track.asset_id)
    if view is None:  # the asset was deleted from its project after the track was published
        raise not_found("audio for this track")
    return await asset_response(
        call.request,
        view.asset,
        audio.assets.blobs,
        redirect=audio.redirect,
        presign_seconds=audio.presign_seconds,
    )


async def favorite(call: CatalogCall) -> Response:
    on = call.request.method == "POST"
    try:
        await call.services.catalog.favorite(call.me.id, call.uuid("track_id", "track"), on=on)
    except CatalogError as exc:
        raise translate(exc) from exc
    return Response(status_code=204)


async def my_favorites(call: CatalogCall) -> Response:
    try:
        views, after = await call.services.catalog.reads.favorites_of(
            call.me.id, _limit(call), call.query.get("after")
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", "the cursor is not one this server gave") from exc
    return _page(views, after)


LIMIT = Query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "page size")
AFTER = Query("after", {"type": "string", "maxLength": 500}, "the `next` of the previous page")
BROWSE = (
    Query("sort", {"type": "string", "enum": list(SORTS)}, "new (default), plays or trending"),
    Query("genre", {"type": "string", "minLength": 1, "maxLength": 50}, "one genre, any case"),
    Query("q", {"type": "string", "minLength": 1, "maxLength": 200}, "words, all to match"),
    AFTER,
    LIMIT,
)
_TRACK = "/api/tracks/{track_id}"

OPERATIONS: list[Operation[CatalogServices]] = [
    Operation(
        "POST",
        "/api/tracks",
        "publish_track",
        "Publish a track from one of the project's audio assets (owners and editors)",
        publish,
        "catalog",
        request=s.NEW_TRACK,
        responses={201: s.TRACK},
        errors=(403, 404, 409),
    ),
    Operation(
        "GET",
        "/api/tracks",
        "browse_tracks",
        "Public tracks, newest, most played or trending first; by genre; by full-text search",
        browse,
        "catalog",
        responses={200: s.TRACK_PAGE},
        errors=(401,),
        query=BROWSE,
        authenticated=False,
    ),
    Operation(
        "GET",
        _TRACK,
        "get_track",
        "A published track, public or unlisted, with its counts",
        get_track,
        "catalog",
        responses={200: s.TRACK},
        errors=(401, 404),
        authenticated=False,
    ),
    Operation(
        "PATCH",
        _TRACK,
        "update_track",
        "Change a track's title, artists, genre, visibility, description or cover (owners and "
        "editors of its project)",
        update_track,
        "catalog",
        request=s.UPDATE_TRACK,
        responses={200: s.TRACK},
        errors=(403, 404, 409),
    ),
    Operation(
        "DELETE",
        _TRACK,
        "unpublish_track",
        "Unpublish a track (owners of its project); its counted plays stay",
        unpublish,
        "catalog",
        responses={204: None},
        errors=(403, 404, 409),
    ),
    Operation(
        "POST",
        f"{_TRACK}/plays",
        "play_track",
        "Record a play (signed in, or anonymous with a device_id); it counts once per "
        "listener per track per 30 minutes",
        play,
        "catalog",
        request=s.PLAY,
        responses={202: s.PLAY_ACCEPTED},
        errors=(401, 404),
        authenticated=False,
    ),
    Operation(
        "POST",
        "/api/plays",
        "play_tracks",
        f"Record up to {s.MAX_PLAYS} plays at once (signed in: all the caller's; anonymous: each "
        "with a device_id, and each counting against the address's rate limit); each counts "
        "as a POST /api/tracks/{id}/plays would. 422 `unknown_tracks` and nothing recorded if "
        "one names no track in the catalog",
        play_many,
        "catalog",
        request=s.PLAY_MANY,
        responses={202: s.PLAYS_ACCEPTED},
        errors=(401, 429),
        authenticated=False,
    ),
    Operation(
        "GET",
        f"{_TRACK}/plays",
        "track_plays",
        "A track's counted plays, trending count and plays per UTC day (the last `days`)",
        plays,
        "catalog",
        responses={200: s.PLAYS},
        errors=(401, 404),
        query=(Query("days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}, "30"),),
        authenticated=False,
    ),
    Operation(
        "GET",
        f"{_TRACK}/audio",
        "track_audio",
        "A published track's audio, streamed with byte ranges (seeking), ETag and "
        "If-None-Match / If-Range, as GET /api/assets/{id} (or a redirect to a presigned URL)",
        audio,
        "catalog",
        media_type="audio/*",
        responses={200: schemas.AUDIO, 206: schemas.AUDIO, 304: None, 307: None},
        errors=(401, 404, 416),
        authenticated=False,
    ),
    Operation(
        "POST",
        f"{_TRACK}/favorite",
        "favorite_track",
        "Make a track one of the caller's favorites (again: no change)",
        favorite,
        "catalog",
        responses={204: None},
        errors=(404, 409),
    ),
    Operation(
        "DELETE",
        f"{_TRACK}/favorite",
        "unfavorite_track",
        "Remove a track from the caller's favorites (not one: no change)",
        favorite,
        "catalog",
        responses={204: None},
        errors=(404, 409),
    ),
    Operation(
        "GET",
        "/api/me/favorites",
        "my_favorites",
        "The caller's favorite tracks still published, latest first",
        my_favorites,
        "catalog",
        responses={200: s.TRACK_PAGE},
        query=(AFTER, LIMIT),
    ),
    Operation(
        "GET",
        "/api/users/{user_id}/tracks",
        "user_tracks",
        "A user's public tracks, newest first (to the user themselves, the unlisted too)",
        user_tracks,
        "catalog",
        responses={200: s.TRACK_PAGE},
        errors=(401, 404),
        query=(AFTER, LIMIT),
        authenticated=False,
    ),
]
