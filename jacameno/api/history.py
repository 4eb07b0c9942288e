"""`/api/projects/{id}/state`, `/history`, `/diff` and `/blame`: a project as it stood at a
version or a moment, every event of its stream with what each update changed, what changed
between two versions, and who wrote the lyrics and set each track's values (projections.replay,
projections.history, projections.diff, projections.blame; docs/history.md). Members
only; to anyone else the project does not exist, and the stream read is always the caller's
project's, so no version or path reaches another's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from starlette.responses import JSONResponse, Response

from domain.events import stream_name
from eventstore import EventStore
from jacameno.api.projects import member_role
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation, Query
from jacameno.http.errors import ApiError
from jacameno.projects.service import Projects
from projections.blame import Blames, Preparing, blame, target
from projections.diff import diff
from projections.document_changes import ChangesReadModel
from projections.history import Filters, history, typing_grouped
from projections.replay import VersionNotFound, moment, state_at, state_when

YJS_MEDIA_TYPE = "application/octet-stream"
FORMATS = ("json", "yjs")
GROUPS = ("typing",)


@dataclass(frozen=True, slots=True)
class HistoryServices:
    """What the time-travel routes need: the members' roles, and the log."""

    projects: Projects
    store: EventStore
    # the document read model's record of what each update changed (history reads the log
    # alone without it)
    changes: ChangesReadModel | None = None
    # blame's replays kept between requests, and its checkpoints (each blame replays from
    # version 0 without it)
    blames: Blames | None = None


HistoryCall = Call[HistoryServices]


def bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{name}: {message}", [name])


def _time(call: HistoryCall, name: str) -> datetime | None:
    """An RFC 3339 query value (the schema checked its form); without a zone it is UTC."""
    text = call.query.get(name)
    if text is None:
        return None
    try:
        return moment(text)
    except ValueError as exc:
        raise bad_parameter(name, "not an ISO-8601 date and time") from exc


async def get_state(call: HistoryCall) -> Response:
    project_id, _ = await member_role(call.services.projects.reads, call)
    version, at = call.query.get("version"), _time(call, "at")
    if version is not None and at is not None:
        raise bad_parameter("at", "give version or at, not both")
    stream, store = stream_name(project_id), call.services.store
    try:
        if at is not None:
            state = await state_when(store, stream, at)
        else:
            head = await store.stream_version(stream)
            state = await state_at(store, stream, head if version is None else version)
    except VersionNotFound as exc:
        raise ApiError(404, "version_not_found", str(exc), ["version"]) from exc
    if call.query.get("format") == "yjs":
        headers = {"X-Jacameno-Version": str(state.version)}
        if state.recorded_at is not None:
            headers["X-Jacameno-Recorded-At"] = state.recorded_at.isoformat()
        update = await asyncio.to_thread(state.doc.get_update)
        return Response(update, media_type=YJS_MEDIA_TYPE, headers=headers)
    # off the event loop, as the build was: a long document takes tens of milliseconds to render
    # and encode, and the node's rooms must not wait
    return await asyncio.to_thread(
        lambda: JSONResponse({"project_id": project_id, **state.public()})
    )


async def get_history(call: HistoryCall) -> Response:
    project_id, _ = await member_role(call.services.projects.reads, call)
    since, until = _time(call, "from"), _time(call, "to")
    path = call.query.get("path")
    page = await history(
        call.services.store,
        stream_name(project_id),
        after=call.query.get("after", 0),
        limit=call.query.get("limit", 50),
        filters=Filters(call.query.get("user"), since, until, path),
        stored=call.services.changes,
    )
    entries = typing_grouped(page.entries) if call.query.get("group") == "typing" else page.entries
    return JSONResponse({"entries": [e.public() for e in entries], "next_after": page.next_after})


async def get_diff(call: HistoryCall) -> Response:
    project_id, _ = await member_role(call.services.projects.reads, call)
    stream, store = stream_name(project_id), call.services.store
    start = call.query.get("from", 0)
    end = call.query.get("to")
    if end is None:
        end = await store.stream_version(stream)
    try:
        found = await diff(store, stream, start, end)
    except VersionNotFound as exc:
        name = "from" if exc.version == start else "to"
        raise ApiError(404, "version_not_found", str(exc), [name]) from exc
    return JSONResponse({"project_id": project_id, **found.public()})


async def get_blame(call: HistoryCall) -> Response:
    project_id, _ = await member_role(call.services.projects.reads, call)
    path: str = call.query.get("path", "lyrics")
    try:
        track_id = target(path)
    except ValueError as exc:
        raise bad_parameter("path", str(exc)) from exc
    try:
        stream, version = stream_name(project_id), call.query.get("version")
        blames = call.services.blames
        found = await (
            blame(call.services.store, stream, version)
            if blames is None
            else blames.blame(stream, version)
        )
    except VersionNotFound as exc:
        raise ApiError(404, "version_not_found", str(exc), ["version"]) from exc
    except Preparing as wait:  # a long replay made in the background: ask again later
        seconds = wait.retry_after
        return JSONResponse(
            {
                "project_id": project_id,
                "status": "preparing",
                "version": wait.upto,
                "retry_after": seconds,
            },
            status_code=202,
            headers={"Retry-After": str(seconds)},
        )
    public = found.public(path)
    if public is None:
        message = f"no track {track_id!r} in the project at version {found.version}"
        raise ApiError(404, "track_not_found", message, ["path"])
    return JSONResponse({"project_id": project_id, **public})


# The query parser reads integers of at most 9 digits.
_VERSION_QUERY = {"type": "integer", "minimum": 0, "maximum": 999_999_999}
_TEXT_QUERY = {"type": "string", "minLength": 1, "maxLength": 500}
_TIME_QUERY = {"type": "string", "format": "date-time", "maxLength": 64}
# Segments split by single slashes: tracks/<id>/volume_db, lyrics, meta/bpm. No NUL (a pattern
# of its own replaces the one `Query.declared` adds).
_PATH_QUERY = {**_TEXT_QUERY, "pattern": "^[^/\\u0000]+(/[^/\\u0000]+)*$"}

OPERATIONS: list[Operation[HistoryServices]] = [
    Operation(
        "GET",
        "/api/projects/{project_id}/state",
        "get_state",
        "The project's document as it stood at a stream version or a moment (members; "
        "neither: now); "
        "`format=yjs` answers the whole state as one Yjs v1 update (application/octet-stream, "
        "headers X-Jacameno-Version and X-Jacameno-Recorded-At)",
        get_state,
        "history",
        query=(
            Query("version", _VERSION_QUERY, "a stream version (0: empty)"),
            Query("at", _TIME_QUERY, "RFC 3339: the last version recorded at or before it"),
            Query("format", {"type": "string", "enum": list(FORMATS)}, "json (default) or yjs"),
        ),
        responses={200: schemas.PROJECT_STATE},
        raw_response=YJS_MEDIA_TYPE,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/api/projects/{project_id}/history",
        "get_history",
        "Every event of the project in version order (members), with who, when and from where, "
        "and what each document update changed in the studio's words",
        get_history,
        "history",
        query=(
            Query("after", _VERSION_QUERY, "versions after this (default 0)"),
            Query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "default 50"),
            Query("user", _TEXT_QUERY, "only events of this user id"),
            Query("from", _TIME_QUERY, "RFC 3339: events recorded at or after it"),
            Query("to", _TIME_QUERY, "RFC 3339: events recorded at or before it"),
            Query("path", _PATH_QUERY, "only updates that changed it: lyrics, tracks/<id>/pan"),
            Query(
                "group",
                {"type": "string", "enum": list(GROUPS)},
                "typing: one entry per run of one user's keystrokes (summary view)",
            ),
        ),
        responses={200: schemas.HISTORY_PAGE},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/api/projects/{project_id}/diff",
        "get_diff",
        "What changed from one stream version of the project to another (members): tracks, "
        "clips, mixer values, meta, comments, markers with their values before and after, and "
        "the lyrics as runs of equal, inserted and deleted text; `from` may be the later version",
        get_diff,
        "history",
        query=(
            Query("from", _VERSION_QUERY, "the version compared from (default 0: empty)"),
            Query("to", _VERSION_QUERY, "the version compared to (default: the head)"),
        ),
        responses={200: schemas.PROJECT_DIFF},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/api/projects/{project_id}/blame",
        "get_blame",
        "Who wrote what (members): the lyrics as runs of text, each with the user and the "
        "version that wrote it, or for `tracks/<id>` who last set each of its mixer values "
        "(volume_db, pan, muted, solo, name), at a stream version (default: the head). A "
        "replay of the project's log from the nearest stored blame checkpoint at or below the "
        "version, which the server keeps for the last projects blamed. A replay too long to "
        "wait for (a project's first blame, from version 0) is made in the background: 202 "
        "with Retry-After until it is ready",
        get_blame,
        "history",
        query=(
            Query("path", _PATH_QUERY, "lyrics (default) or tracks/<track id>"),
            Query("version", _VERSION_QUERY, "a stream version (default: the head)"),
        ),
        responses={200: schemas.PROJECT_BLAME, 202: schemas.BLAME_PREPARING},
        errors=(404,),
    ),
]
