"""`/api/projects/{id}/updates`: a Yjs update applied to the live project by HTTP, for clients
that hold no socket (scripts, integrations, a restore tool). It takes the path a socket's edit
takes (jacameno.collab.room): checked as strictly, applied to the project's room on this node
(loaded for the edit if nobody has it open), appended to the log as the caller's edit (`via`
"api"), and broadcast to every connected client on every node before the answer. Owners and
editors only.

`/api/projects/{id}/restore`: the document (or a part) made what it was at a version, by one
such edit (jacameno.documents.service)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse, Response

from domain.roles import can_write
from jacameno.api.projects import member_role
from jacameno.collab.errors import MalformedMessage, MessageTooLarge, RoomUnavailable
from jacameno.collab.room import Actor
from jacameno.collab.rooms import Rooms
from jacameno.documents.service import Documents, RestoreError
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.http.errors import ApiError, forbidden
from jacameno.projects.service import Projects

UPDATE_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class DocumentServices:
    """What the document routes need: the members' roles, the live rooms to write into, and
    the document service (restore)."""

    projects: Projects
    rooms: Rooms
    documents: Documents


DocumentCall = Call[DocumentServices]


async def apply_update(call: DocumentCall) -> Response:
    project_id, role = await member_role(call.services.projects.reads, call)
    if not can_write(role):
        raise forbidden("viewers may not change the document")
    media_type = call.request.headers.get("content-type", "").partition(";")[0].strip()
    if media_type.lower() != UPDATE_MEDIA_TYPE:
        raise ApiError(415, "unsupported_media_type", f"send the update as {UPDATE_MEDIA_TYPE}")
    update = await call.request.body()
    try:
        version = await call.services.rooms.write(project_id, update, Actor(call.me.id, "api"))
    except MalformedMessage as exc:
        raise ApiError(400, "malformed_update", f"not a valid Yjs v1 update: {exc}") from exc
    except MessageTooLarge as exc:
        raise ApiError(413, "document_too_large", str(exc)) from exc
    except RoomUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"}) from exc
    return JSONResponse({"version": version, "changed": version is not None})


async def restore(call: DocumentCall) -> Response:
    project_id, role = await member_role(call.services.projects.reads, call)
    if not can_write(role):
        raise forbidden("viewers may not restore the document")
    try:
        restored = await call.services.documents.restore(
            call.me.id, project_id, call.body["version"], call.body.get("path")
        )
    except RestoreError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    except MalformedMessage as exc:  # the version holds what cannot be copied (an XML type)
        raise ApiError(400, "bad_request", f"cannot restore that version: {exc}") from exc
    except MessageTooLarge as exc:
        raise ApiError(413, "document_too_large", str(exc)) from exc
    except RoomUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"}) from exc
    return JSONResponse(
        {
            "version": restored.version,
            "path": restored.path,
            "changed": restored.update_version is not None,
            "update_version": restored.update_version,
            "event_version": restored.event_version,
        }
    )


OPERATIONS: list[Operation[DocumentServices]] = [
    Operation(
        "POST",
        "/api/projects/{project_id}/updates",
        "apply_update",
        "Apply a Yjs v1 update to the live document (owners and editors); it reaches every "
        "connected client and is in the log when this answers",
        apply_update,
        "documents",
        raw_request=UPDATE_MEDIA_TYPE,
        responses={200: schemas.APPLIED_UPDATE},
        errors=(403, 404, 415),
    ),
    Operation(
        "POST",
        "/api/projects/{project_id}/restore",
        "restore_document",
        "Make the document (or one part of it) what it was at a version (owners and editors), "
        "by one edit that reaches every connected client (written as several updates when it "
        "is larger than an update may be); history names it (doc.restored)",
        restore,
        "documents",
        request=schemas.RESTORE,
        responses={200: schemas.RESTORED},
        errors=(400, 403, 404, 413),
    ),
]
