"""The `document` read model on each log, fed by real sockets and server-side edits: the tables
and `GET /api/projects/{id}/tracks` answer what the studio did, a document off the schema is
projected where it fits with its problems counted, and a fresh runner folding the same log from
zero builds the same rows."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from domain import events
from harness.accounts import User
from harness.waiting import wait_until
from jacameno.collab.room import Actor
from projections.document import TABLES as DOC_TABLES
from projections.document import document_projection
from projections.runner import ProjectionRunner
from sqldb import Database
from tests.integration.collab.support import Server, YClient

TABLES = ("doc_projects", "doc_tracks", "doc_clips", "doc_comments", "doc_markers")


def track(track_id: str, name: str, **values: Any) -> Map[Any]:
    clips = values.pop("clips", [])
    return Map(
        {
            "id": track_id,
            "name": name,
            "kind": "audio",
            "clips": Array([Map(c) for c in clips]),
            **values,
        }
    )


def db(server: Server) -> Database:
    database: Database = server.app.state.services.core.db
    return database


async def caught_up(server: Server, project: str, *clients: YClient) -> None:
    """Every update the clients sent is in the project's log, and the read models are folded to
    the head of the log."""
    sent = sum(len(c.sent) for c in clients)

    async def logged() -> bool:
        return len(await server.events(project, events.DOC_UPDATED)) >= sent

    await wait_until(logged, "the clients' updates are logged")
    await server.app.state.services.core.runner.wait_for(await server.store.head_position())


async def tracks(server: Server, project: str, user: User) -> dict[str, Any]:
    response = await server.http.get(f"/api/projects/{project}/tracks", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def rows(server: Server, table: str, project: str | None = None) -> list[tuple[Any, ...]]:
    """The table's rows (of `project`, or all), columns as declared, sorted."""
    columns = list(next(t for t in DOC_TABLES if t.name == table).columns)
    names = ", ".join(f'"{c}"' for c in columns)
    where, args = ("", ()) if project is None else (" WHERE project_id = $1", (project,))
    found = await db(server).fetch(f"SELECT {names} FROM {table}{where}", *args)
    return sorted((tuple(r[c] for c in columns) for r in found), key=repr)


async def test_the_tracks_endpoint_and_tables_follow_a_studio_session(server: Server) -> None:
    alice, bob, project, a, b = await server.owner_and_member("viewer")
    meta = a.doc.get("meta", type=Map)
    meta["title"] = "Night drive"
    meta["bpm"] = 96
    line = a.doc.get("tracks", type=Array)
    line.append(
        track(
            "t1",
            "Drums",
            volume_db=-3,
            pan=0,
            muted=False,
            solo=False,
            clips=[
                {"id": "c1", "asset_id": "a1", "start": 0, "length": 8, "offset": 0, "gain_db": 0}
            ],
        )
    )
    line.append(track("t2", "Bass", kind="midi"))
    line.append(track("t3", "Keys"))
    a.doc.get("lyrics", type=Text).insert(0, "city lights\nkeep me awake")
    await caught_up(server, project, a)
    seen = await tracks(server, project, bob)  # a viewer reads them too
    assert [(t["id"], t["position"], t["name"]) for t in seen["tracks"]] == [
        ("t1", 0, "Drums"),
        ("t2", 1, "Bass"),
        ("t3", 2, "Keys"),
    ]
    assert seen["tracks"][0]["clips"] == [
        {"id": "c1", "asset_id": "a1", "start": 0.0, "length": 8.0, "offset": 0.0, "gain_db": 0.0}
    ]
    assert seen["tracks"][0]["muted"] is False
    assert seen["tracks"][1]["kind"] == "midi"
    project_row = await db(server).fetchrow(
        'SELECT title, bpm, "key", lyrics_characters, lyrics_words, lyrics_lines, schema_problems,'
        " version FROM doc_projects WHERE project_id = $1",
        project,
    )
    assert project_row is not None
    assert (project_row["title"], project_row["bpm"], project_row["key"]) == (
        "Night drive",
        96.0,
        None,
    )
    assert (
        project_row["lyrics_characters"],
        project_row["lyrics_words"],
        project_row["lyrics_lines"],
    ) == (25, 5, 2)
    assert project_row["schema_problems"] == 0
    assert seen["version"] == project_row["version"] > 0

    # Rename, move a clip, change a volume (from the other side), reorder, delete.
    drums = line[0]
    drums["name"] = "Kit"
    drums["volume_db"] = -6.5
    drums["clips"][0]["start"] = 4
    del line[1]  # Bass
    name = str(line[1]["name"])  # Keys, moved to the front: deleted and inserted again
    del line[1]
    line.insert(0, track("t3", name))
    a.doc.get("lyrics", type=Text).insert(0, "oh ")
    await caught_up(server, project, a)
    seen = await tracks(server, project, alice)
    assert [(t["id"], t["position"], t["name"]) for t in seen["tracks"]] == [
        ("t3", 0, "Keys"),
        ("t1", 1, "Kit"),
    ]
    assert seen["tracks"][1]["volume_db"] == -6.5
    assert seen["tracks"][1]["clips"][0]["start"] == 4.0
    assert await rows(server, "doc_clips", project) == [
        (project, "t1", "c1", "a1", 4.0, 8.0, 0.0, 0.0)
    ]
    words = await db(server).fetchval(
        "SELECT lyrics_words FROM doc_projects WHERE project_id = $1", project
    )
    assert words == 6

    # Non-members get the same 404 as for the project itself.
    carol = await server.user("carol")
    response = await server.http.get(f"/api/projects/{project}/tracks", headers=carol.headers)
    assert response.status_code == 404
    await a.close()
    await b.close()


def off_schema(doc: Doc[Any]) -> None:
    meta = doc.get("meta", type=Map)
    meta["title"] = "Odd"
    meta["bpm"] = "fast"  # 1: not a number
    meta["mood"] = "dark"  # 2: unknown key
    line = doc.get("tracks", type=Array)
    line.append(
        Map(
            {
                "id": "ok",
                "name": "Fine",
                "volume_db": "loud",
                "colour": "red",  # 3, 4
                "kind": "guitar",  # 5
                "clips": Array([Map({"id": "c", "start": 1}), Map({"id": "c"}), 7]),
            }
        )
    )  # 6, 7
    line.append(Map({"name": "no id"}))  # 8
    line.append("not a map")  # 9
    line.append(Map({"id": "ok", "name": "again"}))  # 10: repeated id
    doc.get("comments", type=Array).append(
        Map({"id": "k1", "text": "nice", "resolved": "yes"})
    )  # 11
    doc.get("markers", type=Array).append(Map({"name": "drop", "at": 32}))


async def test_a_document_off_the_schema_is_projected_where_it_fits(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    assert await server.rooms.edit(project, off_schema, Actor(alice.id, "test")) is not None
    await server.app.state.services.core.runner.wait_for(await server.store.head_position())
    seen = await tracks(server, project, alice)
    [fine] = seen["tracks"]
    assert (fine["id"], fine["name"], fine["volume_db"], fine["kind"]) == ("ok", "Fine", None, None)
    assert [c["id"] for c in fine["clips"]] == ["c"]
    row = await db(server).fetchrow(
        "SELECT title, bpm, comments, schema_problems FROM doc_projects WHERE project_id = $1",
        project,
    )
    assert row is not None
    assert (row["title"], row["bpm"], row["comments"], row["schema_problems"]) == (
        "Odd",
        None,
        1,
        11,
    )
    assert await rows(server, "doc_markers", project) == [(project, 0, None, "drop", 32.0)]


async def test_a_rebuild_from_zero_equals_the_incremental_model(server: Server) -> None:
    alice, _bob, project, a, b = await server.owner_and_member("editor")
    other = await server.project(alice)
    a.doc.get("tracks", type=Array).append(track("t1", "Vox", clips=[{"id": "c1", "start": 2}]))
    b.doc.get("lyrics", type=Text).insert(0, "hello")
    await caught_up(server, project, a, b)
    a.doc.get("tracks", type=Array)[0]["pan"] = -0.5
    b.doc.get("tracks", type=Array).append(track("t2", "Pad"))
    assert await server.rooms.edit(other, off_schema, Actor(alice.id, "test")) is not None
    await caught_up(server, project, a, b)
    await a.close()
    await b.close()
    await server.app.state.services.core.runner.wait_for(await server.store.head_position())
    live = {table: await rows(server, table) for table in TABLES}
    assert len(live["doc_projects"]) == 2
    assert len(live["doc_tracks"]) == 3
    # rebuilt from zero beside the live tables (a fold whose cache holds one document, so every
    # project is loaded again from its snapshot and tail), then swapped in: equal
    runner = ProjectionRunner(
        server.store, db(server), [document_projection(server.store, capacity=1)]
    )
    await runner.rebuild("document")
    assert {table: await rows(server, table) for table in TABLES} == live
