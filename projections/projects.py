"""The projects read model: the `projects` and `project_members` tables, folded from the
projects' streams. It answers "which projects does this user see, with which role"; the
log stays the truth, so the tables can be rebuilt from position 0.

Its events are listed in domain.events (project.*, member.*).
"""

from __future__ import annotations

from domain.events import (
    MEMBER_ADDED,
    MEMBER_REMOVED,
    MEMBER_ROLE_CHANGED,
    PROJECT_CREATED,
    PROJECT_DELETED,
    PROJECT_EVENT_TYPES,
    PROJECT_RENAMED,
    decode,
    is_project_stream,
    project_of,
)
from eventstore import RecordedEvent
from projections.runner import Projection
from sqldb import Connection


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
    project_id = project_of(event.stream)
    data = decode(event.data)
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
        if is_project_stream(event.stream):
            await _apply_one(conn, event)


def projects_projection() -> Projection:
    return Projection(name="projects", event_types=PROJECT_EVENT_TYPES, apply=apply)
