"""`/api/projects/{id}/assets` and `/api/assets/{id}`: upload audio to a project, list its
assets, stream one back with HTTP ranges (seeking), delete one (jacameno.assets.service,
docs/assets.md). Members only; to anyone else the project and its assets do not exist.

An upload's body is the audio file itself (any Content-Type; the server reads the header), at
most `max_upload_bytes`. A GET is answered from the blob store: streamed with `Accept-Ranges`,
one byte range (206, or 416 with `Content-Range: bytes */size`), the content's SHA-256 as its
`ETag` with `If-None-Match` (304) and `If-Range`; or, on S3 with redirects on, a 307 to a
presigned URL that serves the same ranges."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from domain.events.assets import UploadedAsset
from jacameno.api.projects import project_id_of
from jacameno.assets.files import WAVEFORM_TYPE, waveform_key
from jacameno.assets.service import (
    AssetError,
    AssetInUse,
    AssetNotFound,
    AssetPublished,
    Assets,
    NotAllowed,
    NotAudio,
    ProjectNotFound,
    TooLarge,
    blob_key,
)
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation, Query
from jacameno.http.errors import ApiError, forbidden, not_found
from jacameno.http.ranges import Unsatisfiable, none_match, range_applies, requested
from jacameno.storage import BlobNotFound, BlobStore, RangeNotSatisfiable

logger = logging.getLogger(__name__)

UPLOAD_PATH = "/api/projects/{project_id}/assets"
# The content behind an asset id never changes: a client may keep it; revalidation is cheap.
CACHE_CONTROL = "private, max-age=86400"


@dataclass(frozen=True, slots=True)
class AssetServices:
    """The asset commands, and how GET answers from S3 (redirect to presigned URLs or not)."""

    assets: Assets
    redirect: bool = False
    presign_seconds: int = 300


AssetCall = Call[AssetServices]


def _translate(exc: AssetError | NotAudio) -> ApiError:
    if isinstance(exc, ProjectNotFound):
        return not_found("project")
    if isinstance(exc, AssetNotFound):
        return not_found("asset")
    if isinstance(exc, NotAllowed):
        return forbidden(str(exc))
    if isinstance(exc, TooLarge):
        return ApiError(413, "payload_too_large", str(exc), {"max_bytes": exc.max_bytes})
    if isinstance(exc, NotAudio):
        return ApiError(415, "not_audio", f"{exc}: upload WAV, FLAC, OGG, MP3 or AIFF audio")
    if isinstance(exc, AssetInUse):
        return ApiError(409, "asset_in_use", str(exc), {"clips": exc.clips})
    if isinstance(exc, AssetPublished):
        return ApiError(409, "asset_published", str(exc), {"tracks": exc.tracks})
    return ApiError(400, "bad_request", str(exc))


async def upload_asset(call: AssetCall) -> Response:
    project_id = project_id_of(call)
    assets = call.services.assets
    name = call.query.get("name") or "upload"
    try:
        view = await assets.upload(call.me.id, project_id, name, call.request.stream())
    except (AssetError, NotAudio) as exc:
        raise _translate(exc) from exc
    return JSONResponse(view.public(), status_code=201)


async def list_assets(call: AssetCall) -> Response:
    try:
        views = await call.services.assets.of_project(call.me.id, project_id_of(call))
    except AssetError as exc:
        raise _translate(exc) from exc
    return JSONResponse({"assets": [v.public() for v in views]})


async def get_asset(call: AssetCall) -> Response:
    assets = call.services.assets
    try:
        view = await assets.readable(call.me.id, call.uuid("asset_id", "asset"))
    except AssetError as exc:
        raise _translate(exc) from exc
    return await asset_response(
        call.request,
        view.asset,
        assets.blobs,
        redirect=call.services.redirect,
        presign_seconds=call.services.presign_seconds,
    )


async def asset_response(
    request: Request,
    asset: UploadedAsset,
    blobs: BlobStore,
    *,
    redirect: bool,
    presign_seconds: int,
) -> Response:
    """The asset's bytes as a GET (or HEAD) for them is answered once access is granted: the
    ranges, validators and redirect described above (also behind a published track's audio,
    jacameno/api/catalog.py)."""
    etag = f'"{asset.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": CACHE_CONTROL}
    request_headers = request.headers
    if none_match(request_headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    key = blob_key(asset.sha256)
    if redirect:
        url = await blobs.presigned_url(
            key, seconds=presign_seconds, content_type=asset.content_type
        )
        if url is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    wanted = None
    if range_applies(request_headers.get("if-range"), etag):
        try:
            wanted = requested(request_headers.get("range"), asset.size)
        except Unsatisfiable as exc:
            raise ApiError(
                416,
                "range_not_satisfiable",
                f"no satisfiable byte range: the asset has {asset.size} bytes",
                {"size": asset.size},
                headers={"Content-Range": exc.content_range, **headers},
            ) from exc
    start, end = (0, asset.size) if wanted is None else (wanted.start, wanted.end)
    status = 200 if wanted is None else 206
    headers["Content-Length"] = str(end - start)
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range
    if request.method == "HEAD":  # the headers a GET would have, without opening the blob
        return Response(status_code=status, media_type=asset.content_type, headers=headers)
    try:
        stream = await blobs.open_range(key, start, end)
    except (BlobNotFound, RangeNotSatisfiable) as exc:
        # The log says the asset exists, the store does not have its bytes: an operator's
        # problem (a bucket emptied by hand), never the client's.
        logger.error(
            "asset bytes missing",
            extra={"action": "asset.missing", "asset": asset.asset_id, "key": key},
        )
        raise ApiError(500, "internal_error", "the asset's bytes are missing") from exc
    return BlobResponse(stream, status_code=status, media_type=asset.content_type, headers=headers)


class BlobResponse(StreamingResponse):
    """A blob's bytes, streamed; the blob's stream is closed when the response ends however it
    ends (a client that goes away mid-file, as a seeking player does, included), releasing the
    file or the S3 connection at once rather than when the stream is collected."""

    def __init__(
        self,
        stream: AsyncGenerator[bytes, None],
        *,
        status_code: int,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(stream, status_code, headers, media_type)
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stream.aclose()


async def get_waveform(call: AssetCall) -> Response:
    """The waveform peaks an analysis of the asset made (members of its project); 404 until
    one has finished."""
    assets = call.services.assets
    try:
        view = await assets.readable(call.me.id, call.uuid("asset_id", "asset"))
    except AssetError as exc:
        raise _translate(exc) from exc
    try:
        stream = await assets.blobs.open_range(waveform_key(view.asset.sha256))
    except BlobNotFound as exc:
        raise not_found("waveform (no analysis of this asset has finished)") from exc
    headers = {"ETag": f'"{view.asset.sha256}-peaks"', "Cache-Control": "private, no-cache"}
    return BlobResponse(stream, status_code=200, media_type=WAVEFORM_TYPE, headers=headers)


async def delete_asset(call: AssetCall) -> Response:
    try:
        await call.services.assets.delete(call.me.id, call.uuid("asset_id", "asset"))
    except AssetError as exc:
        raise _translate(exc) from exc
    return Response(status_code=204)


_NAME = {**schemas.text(1, 200), "description": "the file's name, for people (default: upload)"}

OPERATIONS: list[Operation[AssetServices]] = [
    Operation(
        "POST",
        UPLOAD_PATH,
        "upload_asset",
        "Upload an audio file to the project (owners and editors): the body is the file "
        "(WAV, FLAC, OGG, MP3, AIFF; at most the server's max upload size), streamed to "
        "storage while hashed; the same content is stored once. Appends asset.uploaded",
        upload_asset,
        "assets",
        query=(Query("name", _NAME, "the file's name"),),
        raw_request="application/octet-stream",
        responses={201: schemas.ASSET},
        errors=(403, 404, 415),
    ),
    Operation(
        "GET",
        UPLOAD_PATH,
        "list_assets",
        "The project's assets, newest first (members)",
        list_assets,
        "assets",
        responses={200: schemas.ASSETS},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/api/assets/{asset_id}",
        "get_asset",
        "The asset's audio (members of its project), streamed: Accept-Ranges, one byte range "
        "per request (206), ETag (its SHA-256) with If-None-Match (304) and If-Range; from S3 "
        "with redirects on, a 307 to a presigned URL instead",
        get_asset,
        "assets",
        media_type="audio/*",
        responses={200: schemas.AUDIO, 206: schemas.AUDIO, 304: None, 307: None},
        errors=(404, 416),
    ),
    Operation(
        "GET",
        "/api/assets/{asset_id}/waveform",
        "get_waveform",
        "The asset's waveform peaks for drawing (members of its project): one audiowaveform-"
        "style JSON document per resolution, made by its analysis (404 until one finished)",
        get_waveform,
        "assets",
        responses={200: schemas.WAVEFORMS},
        errors=(404,),
    ),
    Operation(
        "DELETE",
        "/api/assets/{asset_id}",
        "delete_asset",
        "Remove the asset from its project (owners and editors); 409 while a clip of the "
        "project's document uses it or a published track plays it. Appends asset.deleted",
        delete_asset,
        "assets",
        responses={204: None},
        errors=(403, 404, 409),
    ),
]
