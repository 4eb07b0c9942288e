"""Projects and members: every change is an event on the project's stream, the read model
answers at once, roles are enforced, and projects the caller may not know about are 404."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.integration.api.support import Api


async def test_a_project_is_created_listed_renamed_and_deleted(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner, "Demo")
    assert project["role"] == "owner"
    assert project["created_by"] == owner.id
    path = f"/api/projects/{project['id']}"
    renamed = await api.client.patch(path, json={"title": "Final"}, headers=owner.headers)
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Final"
    assert (await api.client.get(path, headers=owner.headers)).json()["title"] == "Final"
    assert (await api.client.delete(path, headers=owner.headers)).status_code == 204
    assert (await api.client.get(path, headers=owner.headers)).status_code == 404
    listed = await api.client.get("/api/projects", headers=owner.headers)
    assert listed.json()["projects"] == []
    log = await api.services.core.store.read_stream(f"project-{project['id']}")
    assert [e.type for e in log] == [
        "project.created",
        "member.added",
        "project.renamed",
        "project.deleted",
    ]
    assert all(e.metadata["user_id"] == owner.id for e in log)
    assert json.loads(log[2].data) == {"title": "Final"}


async def test_projects_are_paginated_with_a_cursor(api: Api) -> None:
    owner = await api.member("pager")
    created = [(await api.project(owner, f"Song {n}"))["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/projects", params=params, headers=owner.headers)).json()
        seen += [p["id"] for p in page["projects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)
    assert len(seen) == 5
    bad = await api.client.get("/api/projects?cursor=bm9wZQ", headers=owner.headers)
    assert bad.status_code == 400


async def test_strangers_get_404_for_projects_that_exist(api: Api) -> None:
    owner = await api.member("owner")
    stranger = await api.member("stranger")
    project = await api.project(owner)
    path = f"/api/projects/{project['id']}"
    missing = f"/api/projects/{uuid.uuid4()}"
    for target in (path, missing):
        for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
            response = await api.client.request(method, target, json=body, headers=stranger.headers)
            assert response.status_code == 404, (method, target)
            assert response.json()["error"]["code"] == "not_found"
        members = await api.client.get(f"{target}/members", headers=stranger.headers)
        assert members.status_code == 404
    assert (
        await api.client.get("/api/projects/not-a-uuid", headers=owner.headers)
    ).status_code == 404


async def test_a_viewer_cannot_rename_or_invite_but_an_editor_can_rename(api: Api) -> None:
    owner = await api.member("owner")
    viewer = await api.member("viewer")
    editor = await api.member("editor")
    third = await api.member("third")
    project = await api.project(owner)
    path = f"/api/projects/{project['id']}"
    await api.invite(owner, project["id"], viewer, "viewer")
    await api.invite(owner, project["id"], editor, "editor")
    seen = await api.client.get(path, headers=viewer.headers)
    assert seen.status_code == 200
    assert seen.json()["role"] == "viewer"
    rename = await api.client.patch(path, json={"title": "Mine"}, headers=viewer.headers)
    assert rename.status_code == 403
    invite = await api.client.post(
        f"{path}/members", json={"email": third.email, "role": "viewer"}, headers=viewer.headers
    )
    assert invite.status_code == 403
    assert (await api.client.delete(path, headers=viewer.headers)).status_code == 403
    ok = await api.client.patch(path, json={"title": "Edited"}, headers=editor.headers)
    assert ok.status_code == 200
    assert (await api.client.delete(path, headers=editor.headers)).status_code == 403
    members = (await api.client.get(f"{path}/members", headers=viewer.headers)).json()["members"]
    assert {m["user_id"]: m["role"] for m in members} == {
        owner.id: "owner",
        viewer.id: "viewer",
        editor.id: "editor",
    }


async def test_members_are_added_changed_and_removed_and_a_project_keeps_an_owner(
    api: Api,
) -> None:
    owner = await api.member("owner")
    other = await api.member("other")
    project = await api.project(owner)
    base = f"/api/projects/{project['id']}/members"
    await api.invite(owner, project["id"], other, "viewer")
    again = await api.client.post(
        base, json={"email": other.email, "role": "editor"}, headers=owner.headers
    )
    assert again.status_code == 409
    nobody = await api.client.post(
        base, json={"email": "nobody@example.com", "role": "editor"}, headers=owner.headers
    )
    assert nobody.status_code == 404
    promoted = await api.client.patch(
        f"{base}/{other.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "owner"
    # Two owners: one may step down; then the last one may not, nor be removed.
    down = await api.client.patch(
        f"{base}/{owner.id}", json={"role": "editor"}, headers=owner.headers
    )
    assert down.status_code == 200
    last = await api.client.patch(
        f"{base}/{other.id}", json={"role": "viewer"}, headers=other.headers
    )
    assert last.status_code == 409
    assert last.json()["error"]["code"] == "last_owner"
    leave = await api.client.delete(f"{base}/{other.id}", headers=other.headers)
    assert leave.status_code == 409
    gone = await api.client.delete(f"{base}/{owner.id}", headers=owner.headers)
    assert gone.status_code == 204
    types = [e.type for e in await api.services.core.store.read_stream(f"project-{project['id']}")]
    assert types == [
        "project.created",
        "member.added",
        "member.added",
        "member.role_changed",
        "member.role_changed",
        "member.removed",
    ]


async def test_a_removed_member_loses_access_at_once(api: Api) -> None:
    owner = await api.member("owner")
    editor = await api.member("editor")
    project = await api.project(owner)
    path = f"/api/projects/{project['id']}"
    await api.invite(owner, project["id"], editor, "editor")
    assert (await api.client.get(path, headers=editor.headers)).status_code == 200
    removed = await api.client.delete(f"{path}/members/{editor.id}", headers=owner.headers)
    assert removed.status_code == 204
    assert (await api.client.get(path, headers=editor.headers)).status_code == 404
    rename = await api.client.patch(path, json={"title": "x"}, headers=editor.headers)
    assert rename.status_code == 404
    listed = await api.client.get("/api/projects", headers=editor.headers)
    assert listed.json()["projects"] == []


async def test_concurrent_owners_cannot_leave_a_project_without_owner(api: Api) -> None:
    first = await api.member("first")
    second = await api.member("second")
    project = await api.project(first)
    await api.invite(first, project["id"], second, "owner")
    base = f"/api/projects/{project['id']}/members"
    results = await asyncio.gather(
        api.client.delete(f"{base}/{second.id}", headers=first.headers),
        api.client.delete(f"{base}/{first.id}", headers=second.headers),
    )
    # One wins; the other was removed first (404) or would remove the last owner (409).
    codes = sorted(r.status_code for r in results)
    assert codes in ([204, 404], [204, 409])
    state = await api.services.projects.reads.state(project["id"])
    assert state is not None
    assert len(state.owners()) == 1


async def test_concurrent_renames_all_land_in_the_log(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    path = f"/api/projects/{project['id']}"
    responses = await asyncio.gather(
        *(api.client.patch(path, json={"title": f"T{n}"}, headers=owner.headers) for n in range(8))
    )
    assert all(r.status_code in (200, 409) for r in responses)
    renamed = [
        e
        for e in await api.services.core.store.read_stream(f"project-{project['id']}")
        if e.type == "project.renamed"
    ]
    assert len(renamed) == sum(r.status_code == 200 for r in responses)
    final = (await api.client.get(path, headers=owner.headers)).json()
    assert final["title"] == json.loads(renamed[-1].data)["title"]


async def test_the_members_read_says_which_members_still_have_an_account(api: Api) -> None:
    """A join is let in on the project's members read alone when it found the member's account
    (jacameno.collab.gatekeeper): the read says whose accounts are gone."""
    owner, other = await api.member("owner"), await api.member("other")
    project = await api.project(owner)
    await api.invite(owner, project["id"], other, "editor")
    reads = api.services.projects.reads
    state = await reads.state(project["id"])
    assert state is not None
    assert state.accounts == frozenset({owner.id, other.id})
    await api.services.identity.accounts.delete(other.id)
    state = await reads.state(project["id"])
    assert state is not None
    assert state.accounts == frozenset({owner.id})
