"""The projects read model, in one module: the `projects` and `project_members` tables, the fold
that keeps them from the projects' streams (`projects_projection`, applied by the runner), and
the queries on them (`ProjectsReadModel`: a project as one member sees it, a user's projects,
keyset-paginated and newest first, the members of a project). The log stays the truth, so the
tables can be rebuilt from position 0.

Its events are listed in domain.events (project.*, member.*).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

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
from domain.roles import OWNER
from eventstore import RecordedEvent
from projections.runner import Apply, Projection
from projections.tables import Names, Table
from sqldb import Connection, Database, Row


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not hand out."""


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: str
    title: str
    role: str
    created_by: str
    created_at: int
    updated_at: int
    version: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "role": self.role,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class ProjectState:
    """What commands decide on: the project row and its members' roles; and which of those
    members still had an account when it was read (None: not read with it)."""

    id: str
    title: str
    version: int
    deleted: bool
    roles: dict[str, str]
    accounts: frozenset[str] | None = None

    def owners(self) -> list[str]:
        return [user for user, role in self.roles.items() if role == OWNER]


_SELECT = (
    "SELECT p.id, p.title, m.role, p.created_by, p.created_at, p.updated_at, p.version"
    " FROM project_members m JOIN projects p ON p.id = m.project_id"
)


def _view(row: Row) -> ProjectView:
    return ProjectView(
        row["id"],
        row["title"],
        row["role"],
        row["created_by"],
        int(row["created_at"]),
        int(row["updated_at"]),
        int(row["version"]),
    )


def encode_cursor(view: ProjectView) -> str:
    raw = json.dumps([view.created_at, view.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created_at, project_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor(cursor) from exc
    if not isinstance(created_at, int) or not isinstance(project_id, str):
        raise InvalidCursor(cursor)
    return created_at, project_id


class ProjectsReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def project_for(self, user_id: str, project_id: str) -> ProjectView | None:
        """The live project as `user_id` sees it; None if it is deleted or they are no member."""
        row = await self._db.fetchrow(
            f"{_SELECT} WHERE m.user_id = $1 AND m.project_id = $2 AND p.deleted_at IS NULL",
            user_id,
            project_id,
        )
        return None if row is None else _view(row)

    async def role_of(self, user_id: str, project_id: str) -> str | None:
        view = await self.project_for(user_id, project_id)
        return None if view is None else view.role

    async def projects_of(
        self, user_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[ProjectView], str | None]:
        """A page of the user's live projects, newest first, and the cursor of the next page."""
        if cursor is None:
            rows = await self._db.fetch(
                f"{_SELECT} WHERE m.user_id = $1 AND p.deleted_at IS NULL"
                " ORDER BY p.created_at DESC, p.id DESC LIMIT $2",
                user_id,
                limit + 1,
            )
        else:
            created_at, project_id = decode_cursor(cursor)
            rows = await self._db.fetch(
                f"{_SELECT} WHERE m.user_id = $1 AND p.deleted_at IS NULL"
                " AND (p.created_at < $2 OR (p.created_at = $2 AND p.id < $3))"
                " ORDER BY p.created_at DESC, p.id DESC LIMIT $4",
                user_id,
                created_at,
                project_id,
                limit + 1,
            )
        views = [_view(r) for r in rows[:limit]]
        return views, encode_cursor(views[-1]) if len(rows) > limit else None

    async def state(self, project_id: str) -> ProjectState | None:
        # One statement, so one round trip on every cold join and one snapshot of the tables:
        # which members still have an account comes with it, so a join need not read its user
        # (jacameno.collab.gatekeeper).
        rows = await self._db.fetch(
            "SELECT p.id, p.title, p.version, p.deleted_at, m.user_id, m.role, u.id AS account"
            " FROM projects p LEFT JOIN project_members m ON m.project_id = p.id"
            " LEFT JOIN users u ON u.id = m.user_id WHERE p.id = $1",
            project_id,
        )
        if not rows:
            return None
        first = rows[0]
        return ProjectState(
            first["id"],
            first["title"],
            int(first["version"]),
            first["deleted_at"] is not None,
            {r["user_id"]: r["role"] for r in rows if r["user_id"] is not None},
            frozenset(r["user_id"] for r in rows if r["account"] is not None),
        )

    async def members(self, project_id: str) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT m.user_id, u.email, u.display_name, m.role, m.added_at"
            " FROM project_members m LEFT JOIN users u ON u.id = m.user_id"
            " WHERE m.project_id = $1 ORDER BY m.added_at, m.user_id",
            project_id,
        )
        return [
            {
                "user_id": r["user_id"],
                "email": r["email"],
                "display_name": r["display_name"],
                "role": r["role"],
                "added_at": int(r["added_at"]),
            }
            for r in rows
        ]


# -- the fold ----------------------------------------------------------------------------


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


async def _apply_one(conn: Connection, names: Names, event: RecordedEvent) -> None:
    projects, members = names["projects"], names["project_members"]
    project_id = project_of(event.stream)
    data = decode(event.data)
    at = _millis(event)
    if event.type == PROJECT_CREATED:
        await conn.execute(
            f"INSERT INTO {projects} (id, title, created_by, created_at, updated_at, version)"
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
            f"UPDATE {projects} SET title = $2 WHERE id = $1", project_id, data["title"]
        )
    elif event.type == PROJECT_DELETED:
        await conn.execute(f"UPDATE {projects} SET deleted_at = $2 WHERE id = $1", project_id, at)
    elif event.type in (MEMBER_ADDED, MEMBER_ROLE_CHANGED):
        await conn.execute(
            f"INSERT INTO {members} (project_id, user_id, role, added_at)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            project_id,
            data["user_id"],
            data["role"],
            at,
        )
    elif event.type == MEMBER_REMOVED:
        await conn.execute(
            f"DELETE FROM {members} WHERE project_id = $1 AND user_id = $2",
            project_id,
            data["user_id"],
        )
    await conn.execute(
        f"UPDATE {projects} SET version = $2, updated_at = $3 WHERE id = $1",
        project_id,
        event.version,
        at,
    )


def fold(names: Names) -> Apply:
    """The fold into the tables `names` gives (the live ones, or their rebuild twins). Project
    and membership events are few and each depends on the rows before it: one statement each."""

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        for event in events:
            if is_project_stream(event.stream):
                await _apply_one(conn, names, event)

    return apply


PROJECTS = "projects"

TABLES = (
    Table(
        "projects",
        {
            "id": "text not null",
            "title": "text not null",
            "created_by": "text not null",
            "created_at": "bigint not null",
            "updated_at": "bigint not null",
            "version": "bigint not null",  # stream version of the last event applied
            "deleted_at": "bigint",
        },
        key=("id",),
    ),
    Table(
        "project_members",
        {
            "project_id": "text not null",
            "user_id": "text not null",
            "role": "text not null",  # owner, editor or viewer
            "added_at": "bigint not null",
        },
        key=("project_id", "user_id"),
        indexes=[("user_id", "project_id")],
    ),
)


def projects_projection() -> Projection:
    return Projection(name=PROJECTS, event_types=PROJECT_EVENT_TYPES, fold=fold, tables=TABLES)
