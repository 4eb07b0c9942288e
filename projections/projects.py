"""The projects read model: the `projects` and `project_members` tables, folded from the
`project-{uuid}` streams. It answers "which projects does this user see, with which role"; the
log stays the truth, so the tables can be rebuilt from position 0.

Events (data is a JSON object; metadata carries the acting `user_id`):

    project.created       {"title"}            the actor is not yet a member: a member.added follows
    project.renamed       {"title"}
    project.deleted       {}                   the row stays, marked deleted; the log keeps all
    member.added          {"user_id", "role"}
    member.role_changed   {"user_id", "role"}
    member.removed        {"user_id"}
"""

from __future__ import annotations

import json
from typing import Any

from eventstore import RecordedEvent
from projections.runner import Projection
from sqldb import Connection

PROJECT_CREATED = "project.created"
PROJECT_RENAMED = "project.renamed"
PROJECT_DELETED = "project.deleted"
MEMBER_ADDED = "member.added"
MEMBER_ROLE_CHANGED = "member.role_changed"
MEMBER_REMOVED = "member.removed"
EVENT_TYPES = frozenset(
    {
        PROJECT_CREATED,
        PROJECT_RENAMED,
        PROJECT_DELETED,
        MEMBER_ADDED,
        MEMBER_ROLE_CHANGED,
        MEMBER_REMOVED,
    }
)
ROLES = ("owner", "editor", "viewer")
STREAM_PREFIX = "project-"


def stream_name(project_id: str) -> str:
    return f"{STREAM_PREFIX}{project_id}"


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


async def _touch(conn: Connection, project_id: str, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE projects SET version = $2, updated_at = $3 WHERE id = $1",
        project_id,
        event.version,
        _millis(event),
    )


async def _apply_one(conn: Connection, event: RecordedEvent) -> None:
    project_id = event.stream.removeprefix(STREAM_PREFIX)
    data: dict[str, Any] = json.loads(event.data) if event.data else {}
    at = _millis(event)
    if event.type == PROJECT_CREATED:
        await conn.execute(
            "INSERT INTO projects (id, title, created_by, created_at, updated_at, version)"
            " VALUES ($1, $2, $3, $4, $4, $5)"
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title, version = excluded.version",
            project_id,
            data["title"],
            str(event.metadata.get("user_id", "")),
            at,
            event.version,
        )
        return
    if event.type == PROJECT_RENAMED:
        await conn.execute(
            "UPDATE projects SET title = $2 WHERE id = $1", project_id, data["title"]
        )
    elif event.type == PROJECT_DELETED:
        await conn.execute("UPDATE projects SET deleted_at = $2 WHERE id = $1", project_id, at)
    elif event.type in (MEMBER_ADDED, MEMBER_ROLE_CHANGED):
        await conn.execute(
            "INSERT INTO project_members (project_id, user_id, role, added_at)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            project_id,
            data["user_id"],
            data["role"],
            at,
        )
    elif event.type == MEMBER_REMOVED:
        await conn.execute(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
            project_id,
            data["user_id"],
        )
    await _touch(conn, project_id, event)


async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
    for event in events:
        if event.stream.startswith(STREAM_PREFIX):
            await _apply_one(conn, event)


def projects_projection() -> Projection:
    return Projection(name="projects", event_types=EVENT_TYPES, apply=apply)
