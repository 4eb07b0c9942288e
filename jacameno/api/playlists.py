"""`/api/playlists`: a user's playlists of published tracks (create, rename, make public or
private, reorder, add and remove tracks, delete: the owner only), and
`/api/users/{id}/playlists`. A private playlist answers 404 to anyone but its owner; a public one
is read by anyone, signed in or not (docs/catalog.md)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from jacameno.api import catalog_schemas as s
from jacameno.api.catalog import (
    CatalogCall,
    CatalogServices,
    caller,
    track_json,
    translate,
)
from jacameno.catalog.errors import CatalogError
from jacameno.catalog.service import Catalog
from jacameno.http.endpoint import Operation
from projections.catalog_reads import PlaylistView


async def _answer(catalog: Catalog, view: PlaylistView, status: int = 200) -> Response:
    tracks = await catalog.reads.playlist_tracks(view.id)
    body = {**view.summary(), "tracks": [track_json(t) for t in tracks]}
    return JSONResponse(body, status_code=status)


async def create_playlist(call: CatalogCall) -> Response:
    catalog = call.services.catalog
    view = await catalog.create_playlist(
        call.me.id, call.body["title"], bool(call.body.get("public", False))
    )
    return await _answer(catalog, view, 201)


async def get_playlist(call: CatalogCall) -> Response:
    me = await caller(call)
    catalog = call.services.catalog
    try:
        view = await catalog.playlist(
            None if me is None else me.id, call.uuid("playlist_id", "playlist")
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return await _answer(catalog, view)


async def update_playlist(call: CatalogCall) -> Response:
    catalog, body = call.services.catalog, call.body
    try:
        view = await catalog.edit_playlist(
            call.me.id,
            call.uuid("playlist_id", "playlist"),
            title=body.get("title"),
            public=body.get("public"),
            order=body.get("track_ids"),
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return await _answer(catalog, view)


async def delete_playlist(call: CatalogCall) -> Response:
    try:
        await call.services.catalog.delete_playlist(
            call.me.id, call.uuid("playlist_id", "playlist")
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return Response(status_code=204)


async def add_track(call: CatalogCall) -> Response:
    catalog = call.services.catalog
    try:
        view = await catalog.add_to_playlist(
            call.me.id,
            call.uuid("playlist_id", "playlist"),
            call.body["track_id"],
            call.body.get("index"),
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return await _answer(catalog, view)


async def remove_track(call: CatalogCall) -> Response:
    try:
        await call.services.catalog.remove_from_playlist(
            call.me.id,
            call.uuid("playlist_id", "playlist"),
            call.uuid("track_id", "track"),
        )
    except CatalogError as exc:
        raise translate(exc) from exc
    return Response(status_code=204)


async def user_playlists(call: CatalogCall) -> Response:
    me = await caller(call)
    user_id = call.uuid("user_id", "user")
    views = await call.services.catalog.reads.playlists_of(
        user_id, private=me is not None and me.id == user_id
    )
    return JSONResponse({"playlists": [v.summary() for v in views]})


_PLAYLIST = "/api/playlists/{playlist_id}"

OPERATIONS: list[Operation[CatalogServices]] = [
    Operation(
        "POST",
        "/api/playlists",
        "create_playlist",
        "Create a playlist (private unless `public`)",
        create_playlist,
        "catalog",
        request=s.NEW_PLAYLIST,
        responses={201: s.PLAYLIST},
    ),
    Operation(
        "GET",
        _PLAYLIST,
        "get_playlist",
        "A playlist and its tracks still published (private: its owner only)",
        get_playlist,
        "catalog",
        responses={200: s.PLAYLIST},
        errors=(401, 404),
        authenticated=False,
    ),
    Operation(
        "PATCH",
        _PLAYLIST,
        "update_playlist",
        "Rename a playlist, make it public or private, or reorder its tracks (its owner)",
        update_playlist,
        "catalog",
        request=s.UPDATE_PLAYLIST,
        responses={200: s.PLAYLIST},
        errors=(403, 404, 409),
    ),
    Operation(
        "DELETE",
        _PLAYLIST,
        "delete_playlist",
        "Delete a playlist (its owner)",
        delete_playlist,
        "catalog",
        responses={204: None},
        errors=(403, 404, 409),
    ),
    Operation(
        "POST",
        f"{_PLAYLIST}/tracks",
        "add_playlist_track",
        "Add a published track to a playlist, at `index` or at the end (its owner)",
        add_track,
        "catalog",
        request=s.ADD_TO_PLAYLIST,
        responses={200: s.PLAYLIST},
        errors=(403, 404, 409),
    ),
    Operation(
        "DELETE",
        f"{_PLAYLIST}/tracks/{{track_id}}",
        "remove_playlist_track",
        "Remove a track from a playlist (its owner)",
        remove_track,
        "catalog",
        responses={204: None},
        errors=(403, 404, 409),
    ),
    Operation(
        "GET",
        "/api/users/{user_id}/playlists",
        "user_playlists",
        "A user's public playlists, newest first (to the user themselves, the private too)",
        user_playlists,
        "catalog",
        responses={200: s.PLAYLISTS},
        errors=(401, 404),
        authenticated=False,
    ),
]
