"""`/api/projects`: projects and their members. A project the caller is not a member of answers
404 exactly like one that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from jacameno.accounts import Accounts
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation, Query
from jacameno.http.errors import ApiError, conflict, forbidden, not_found
from jacameno.projects.service import (
    Conflict,
    MemberNotFound,
    NotAllowed,
    ProjectError,
    ProjectNotFound,
    Projects,
)
from projections.projects import InvalidCursor, ProjectsReadModel

DEFAULT_PAGE = 50


@dataclass(frozen=True, slots=True)
class ProjectServices:
    """What the project routes need: the commands and reads, and the accounts to find a member
    by email."""

    projects: Projects
    accounts: Accounts


ProjectCall = Call[ProjectServices]


def project_id_of(call: Call[Any]) -> str:
    """The path's project id; 404 if it is not a canonical UUID."""
    return call.uuid("project_id", "project")


async def member_role(reads: ProjectsReadModel, call: Call[Any]) -> tuple[str, str]:
    """(project id, the caller's role in it); 404 if the caller is not a member, exactly as if
    the project did not exist."""
    project_id = project_id_of(call)
    role = await reads.role_of(call.me.id, project_id)
    if role is None:
        raise not_found("project")
    return project_id, role


def _translate(exc: ProjectError) -> ApiError:
    if isinstance(exc, ProjectNotFound):
        return not_found("project")
    if isinstance(exc, MemberNotFound):
        return not_found("member")
    if isinstance(exc, NotAllowed):
        return forbidden(str(exc))
    if isinstance(exc, Conflict):
        return conflict(exc.code, str(exc))
    return ApiError(400, "bad_request", str(exc))


async def create_project(call: ProjectCall) -> Response:
    view = await call.services.projects.create(call.me.id, call.body["title"])
    return JSONResponse(view.public(), status_code=201)


async def list_projects(call: ProjectCall) -> Response:
    limit = call.query.get("limit", DEFAULT_PAGE)
    try:
        views, cursor = await call.services.projects.reads.projects_of(
            call.me.id, limit, call.query.get("cursor")
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", "the cursor is not one this server gave") from exc
    return JSONResponse({"projects": [v.public() for v in views], "next_cursor": cursor})


async def get_project(call: ProjectCall) -> Response:
    try:
        view = await call.services.projects.get(call.me.id, project_id_of(call))
    except ProjectError as exc:
        raise _translate(exc) from exc
    return JSONResponse(view.public())


async def update_project(call: ProjectCall) -> Response:
    try:
        view = await call.services.projects.rename(
            call.me.id, project_id_of(call), call.body["title"]
        )
    except ProjectError as exc:
        raise _translate(exc) from exc
    return JSONResponse(view.public())


async def delete_project(call: ProjectCall) -> Response:
    try:
        await call.services.projects.delete(call.me.id, project_id_of(call))
    except ProjectError as exc:
        raise _translate(exc) from exc
    return Response(status_code=204)


async def list_members(call: ProjectCall) -> Response:
    projects = call.services.projects
    try:
        view = await projects.get(call.me.id, project_id_of(call))
    except ProjectError as exc:
        raise _translate(exc) from exc
    return JSONResponse({"members": await projects.reads.members(view.id)})


async def _member(call: ProjectCall, project_id: str, user_id: str) -> Response:
    for member in await call.services.projects.reads.members(project_id):
        if member["user_id"] == user_id:
            return JSONResponse(member, status_code=201 if call.request.method == "POST" else 200)
    raise not_found("member")


async def add_member(call: ProjectCall) -> Response:
    projects = call.services.projects
    project_id, _ = await member_role(projects.reads, call)
    user = await call.services.accounts.find_by_email(call.body["email"])
    if user is None:
        raise ApiError(404, "user_not_found", "no account has this email")
    try:
        await projects.add_member(call.me.id, project_id, user.id, call.body["role"])
    except ProjectError as exc:
        raise _translate(exc) from exc
    return await _member(call, project_id, user.id)


async def update_member(call: ProjectCall) -> Response:
    project_id = project_id_of(call)
    user_id = call.uuid("user_id", "member")
    try:
        await call.services.projects.change_role(call.me.id, project_id, user_id, call.body["role"])
    except ProjectError as exc:
        raise _translate(exc) from exc
    return await _member(call, project_id, user_id)


async def remove_member(call: ProjectCall) -> Response:
    project_id = project_id_of(call)
    user_id = call.uuid("user_id", "member")
    try:
        await call.services.projects.remove_member(call.me.id, project_id, user_id)
    except ProjectError as exc:
        raise _translate(exc) from exc
    return Response(status_code=204)


_PROJECT = "/api/projects/{project_id}"
_MEMBER = "/api/projects/{project_id}/members/{user_id}"
_PAGE = (
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
    Query(
        "cursor",
        {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9_-]+$"},
        "next_cursor of the previous page",
    ),
)

OPERATIONS: list[Operation[ProjectServices]] = [
    Operation(
        "POST",
        "/api/projects",
        "create_project",
        "Create a project (the caller owns it)",
        create_project,
        "projects",
        request=schemas.NEW_PROJECT,
        responses={201: schemas.PROJECT},
    ),
    Operation(
        "GET",
        "/api/projects",
        "list_projects",
        "The caller's projects, newest first",
        list_projects,
        "projects",
        responses={200: schemas.PROJECT_PAGE},
        query=_PAGE,
    ),
    Operation(
        "GET",
        _PROJECT,
        "get_project",
        "A project the caller is a member of",
        get_project,
        "projects",
        responses={200: schemas.PROJECT},
        errors=(404,),
    ),
    Operation(
        "PATCH",
        _PROJECT,
        "update_project",
        "Rename a project (owners and editors)",
        update_project,
        "projects",
        request=schemas.UPDATE_PROJECT,
        responses={200: schemas.PROJECT},
        errors=(403, 404, 409),
    ),
    Operation(
        "DELETE",
        _PROJECT,
        "delete_project",
        "Delete a project (owners); its event log is kept for audit",
        delete_project,
        "projects",
        responses={204: None},
        errors=(403, 404, 409),
    ),
    Operation(
        "GET",
        f"{_PROJECT}/members",
        "list_members",
        "The members of a project",
        list_members,
        "members",
        responses={200: schemas.MEMBERS},
        errors=(404,),
    ),
    Operation(
        "POST",
        f"{_PROJECT}/members",
        "add_member",
        "Add a member by email (owners)",
        add_member,
        "members",
        request=schemas.NEW_MEMBER,
        responses={201: schemas.MEMBER},
        errors=(403, 404, 409),
    ),
    Operation(
        "PATCH",
        _MEMBER,
        "update_member",
        "Change a member's role (owners)",
        update_member,
        "members",
        request=schemas.UPDATE_MEMBER,
        responses={200: schemas.MEMBER},
        errors=(403, 404, 409),
    ),
    Operation(
        "DELETE",
        _MEMBER,
        "remove_member",
        "Remove a member (owners), or leave (anyone)",
        remove_member,
        "members",
        responses={204: None},
        errors=(403, 404, 409),
    ),
]
