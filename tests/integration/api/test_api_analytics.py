"""`GET /api/projects/{id}/analytics` and `GET /api/me/analytics`: what members did, from the
analytics read model, for owners and editors only (viewers 403, strangers 404), and a 400 that says
what is wrong with a bad window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc, Map

from domain import events
from tests.integration.api.support import Api, Member

DAY_MS = 86_400_000


def titled(title: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("meta", type=Map)["title"] = title
    return doc.get_update()


async def edit(api: Api, who: Member, project: str, title: str) -> None:
    response = await api.client.post(
        f"/api/projects/{project}/updates",
        content=titled(title),
        headers={**who.headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text


async def session(api: Api, who: Member, project: str, connection: str) -> None:
    """A join and a leave, as a node logs them."""
    store = api.services.core.store
    for kind in (events.SESSION_JOINED, events.SESSION_LEFT):
        await store.append(
            events.stream_name(project),
            [events.session_event(kind, user_id=who.id, connection_id=connection, node="n1")],
        )


async def folded(api: Api) -> None:
    core = api.services.core
    await core.runner.wait_for(await core.store.head_position())


async def logged_bytes(api: Api, project: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for e in await api.services.core.store.read_stream(events.stream_name(project)):
        if e.type == events.DOC_UPDATED:
            user = e.metadata["user_id"]
            sizes[user] = sizes.get(user, 0) + len(e.data)
    return sizes


async def test_owners_and_editors_see_what_each_collaborator_did(api: Api) -> None:
    owner, editor, viewer, stranger = [
        await api.member(n) for n in ("owner", "editor", "viewer", "stranger")
    ]
    project = (await api.project(owner, "Night drive"))["id"]
    await api.invite(owner, project, editor, "editor")
    await api.invite(owner, project, viewer, "viewer")
    for title in ("a", "b"):
        await edit(api, owner, project, title)
    await edit(api, editor, project, "c")
    await session(api, editor, project, "c1")
    await folded(api)
    sizes = await logged_bytes(api, project)
    today = datetime.now(UTC).timestamp() * 1000 // DAY_MS * DAY_MS

    path = f"/api/projects/{project}/analytics"
    for who in (owner, editor):
        response = await api.client.get(path, headers=who.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["project_id"], body["granularity"]) == (project, "day")
        assert body["to"] - body["from"] == 8 * DAY_MS  # 7 days back from now, whole days
        assert body["collaborators"] == [
            {"user_id": owner.id, "edits": 2, "bytes": sizes[owner.id], "sessions": 0},
            {"user_id": editor.id, "edits": 1, "bytes": sizes[editor.id], "sessions": 1},
        ]
        totals = body["totals"]
        assert (totals["edits"], totals["sessions"], totals["collaborators"]) == (3, 1, 2)
        assert (totals["bytes"], totals["open_sessions"]) == (sum(sizes.values()), 0)
        assert totals["session_seconds"] >= 0
        [bucket] = body["series"]
        assert bucket == {
            "at": today,
            "edits": 3,
            "bytes": sum(sizes.values()),
            "sessions": 1,
            "collaborators": 2,
        }
    hourly = (await api.client.get(f"{path}?granularity=hour", headers=owner.headers)).json()
    assert hourly["to"] - hourly["from"] == (7 * 24 + 1) * 3_600_000
    assert sum(b["edits"] for b in hourly["series"]) == 3  # one hour, or two at its turn
    assert all(b["at"] % 3_600_000 == 0 for b in hourly["series"])

    refused = await api.client.get(path, headers=viewer.headers)
    assert refused.status_code == 403
    assert "owners and editors" in refused.json()["error"]["message"]
    assert (await api.client.get(path, headers=stranger.headers)).status_code == 404
    assert (await api.client.get(path)).status_code == 401


async def test_my_analytics_sum_my_own_activity_over_my_projects(api: Api) -> None:
    me, other = await api.member("me"), await api.member("other")
    first = (await api.project(me, "First"))["id"]
    second = (await api.project(other, "Second"))["id"]
    await api.invite(other, second, me, "editor")
    await edit(api, me, first, "x")
    await edit(api, me, second, "y")
    await edit(api, me, second, "z")
    await edit(api, other, second, "not mine")
    await session(api, me, first, "c2")
    await folded(api)
    response = await api.client.get("/api/me/analytics", headers=me.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == me.id
    assert [(p["project_id"], p["title"], p["edits"], p["sessions"]) for p in body["projects"]] == [
        (second, "Second", 2, 0),
        (first, "First", 1, 1),
    ]
    assert (body["totals"]["edits"], body["totals"]["projects"]) == (3, 2)
    assert sum(b["edits"] for b in body["series"]) == 3
    nothing = await api.client.get(
        "/api/me/analytics?from=2020-01-01&to=2020-01-02", headers=me.headers
    )
    assert nothing.json()["series"] == nothing.json()["projects"] == []
    assert nothing.json()["totals"]["edits"] == 0


async def test_a_window_is_whole_buckets_in_utc(api: Api) -> None:
    me = await api.member("me")
    body = (
        await api.client.get(
            "/api/me/analytics?from=2026-11-01T10:30:00%2B02:00&to=2026-11-01T12:00Z"
            "&granularity=hour",
            headers=me.headers,
        )
    ).json()
    start = int(datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp() * 1000)
    assert (body["from"], body["to"]) == (start, start + 4 * 3_600_000)
    body = (
        await api.client.get("/api/me/analytics?from=2026-11-01&to=2026-11-01", headers=me.headers)
    ).json()
    assert body["from"] == body["to"] == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


BAD_WINDOWS = [
    ("from=yesterday", "from", "ISO 8601"),
    ("to=2026-13-01", "to", "ISO 8601"),
    ("granularity=minute", "granularity", "hour or day"),
    ("from=2026-11-02&to=2026-11-01", "from", "not be after"),
    ("from=2026-10-01&to=2026-11-02&granularity=hour", "to", "at most 744 hours"),
    ("from=2025-01-01&to=2026-11-02", "to", "at most 366 days"),
    ("from=0001-01-01&to=9999-12-31", "to", "at most 366 days"),
]


async def test_a_bad_window_is_a_400_that_says_why(api: Api) -> None:
    me = await api.member("me")
    project = (await api.project(me))["id"]
    for query, parameter, says in BAD_WINDOWS:
        for path in (f"/api/projects/{project}/analytics", "/api/me/analytics"):
            response = await api.client.get(f"{path}?{query}", headers=me.headers)
            assert response.status_code == 400, (query, response.text)
            error = response.json()["error"]
            assert (error["code"], error["details"]) == ("invalid_parameter", [parameter])
            assert says in error["message"], query
