"""The projects read model is a projection: dropped and folded again from the log, it is equal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from projections.projects import projects_projection
from projections.runner import ProjectionRunner
from tests.integration.api.support import Api

TABLES = (
    "SELECT id, title, created_by, created_at, updated_at, version, deleted_at FROM projects"
    " ORDER BY id",
    "SELECT project_id, user_id, role, added_at FROM project_members ORDER BY project_id, user_id",
)


async def snapshot(api: Api) -> list[list[tuple[object, ...]]]:
    rows = [await api.services.core.db.fetch(query) for query in TABLES]
    return [[tuple(cast("Iterable[object]", r)) for r in table] for table in rows]


async def test_the_projects_tables_rebuilt_from_the_log_are_identical(api: Api) -> None:
    owner, editor, viewer = [await api.member(n) for n in ("owner", "editor", "viewer")]
    kept = await api.project(owner, "Kept")
    gone = await api.project(owner, "Gone")
    await api.invite(owner, kept["id"], editor, "editor")
    await api.invite(owner, kept["id"], viewer, "viewer")
    path = f"/api/projects/{kept['id']}"
    assert (
        await api.client.patch(path, json={"title": "Renamed"}, headers=editor.headers)
    ).is_success
    changed = await api.client.patch(
        f"{path}/members/{viewer.id}", json={"role": "editor"}, headers=owner.headers
    )
    assert changed.is_success, changed.text
    removed = await api.client.delete(f"{path}/members/{editor.id}", headers=owner.headers)
    assert removed.is_success, removed.text
    deleted = await api.client.delete(f"/api/projects/{gone['id']}", headers=owner.headers)
    assert deleted.is_success, deleted.text
    live = await snapshot(api)

    db = api.services.core.db
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM project_members")
        await conn.execute("DELETE FROM projects")
        await conn.execute("DELETE FROM projection_checkpoints WHERE name = 'projects'")
    assert await snapshot(api) == [[], []]
    runner = ProjectionRunner(api.services.core.store, db, [projects_projection()])
    await runner.start()
    await runner.wait_for(await api.services.core.store.head_position())
    await runner.stop()
    assert await snapshot(api) == live
