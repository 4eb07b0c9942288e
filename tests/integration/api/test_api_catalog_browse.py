"""Browsing the catalog, embedded and on Postgres + Redis: keyset pages without gaps or
repeats while tracks are published between pages, each sort, genres, full-text search, and
cursors this server did not give."""

from __future__ import annotations

from typing import Any

from tests.integration.api.catalog_support import asset, play, publish, settled
from tests.integration.api.support import Api, Member


async def pages(api: Api, query: str, limit: int, between: Any = None) -> list[str]:
    """Every id the pages of `query` give, calling `between()` after each page."""
    seen: list[str] = []
    after: str | None = None
    while True:
        cursor = "" if after is None else f"&after={after}"
        response = await api.client.get(f"/api/tracks?{query}&limit={limit}{cursor}")
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [t["id"] for t in body["tracks"]]
        after = body["next"]
        if after is None:
            return seen
        if between is not None:
            await between()


async def catalog_of(api: Api, owner: Member, titles: list[str], **fields: Any) -> list[str]:
    project = await api.project(owner)
    mixdown = await asset(api, project["id"], owner)
    return [
        (await publish(api, owner, project["id"], mixdown, title=t, **fields))["id"] for t in titles
    ]


async def test_pages_have_no_gaps_or_repeats_while_tracks_are_published(api: Api) -> None:
    owner = await api.member("owner")
    first = await catalog_of(api, owner, [f"Song {n}" for n in range(7)])
    project = await api.project(owner, "Later")
    mixdown = await asset(api, project["id"], owner)
    later: list[str] = []

    async def publish_one() -> None:
        later.append((await publish(api, owner, project["id"], mixdown, title="Late"))["id"])

    seen = await pages(api, "sort=new", 2, publish_one)
    assert seen == list(reversed(first))  # newer tracks come before the cursor: not in these
    assert len(later) == 3
    again = await pages(api, "sort=new", 4)
    assert again == list(reversed(first + later))


async def test_sorts_by_plays_and_trending(api: Api) -> None:
    owner = await api.member("owner")
    ids = await catalog_of(api, owner, ["A", "B", "C", "D"])
    for n, track_id in enumerate(ids):  # A: 0 plays, B: 1, C: 2, D: 3 ...
        for device in range(n):
            await play(api, track_id, device=f"device-{n}-{device}")
    await settled(api)
    by_plays = await pages(api, "sort=plays", 3)
    assert by_plays == list(reversed(ids))
    assert await pages(api, "sort=trending", 1) == list(reversed(ids))
    wrong = await api.client.get("/api/tracks?sort=loudest")
    assert wrong.status_code == 422


async def test_genre_and_full_text_search(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    mixdown = await asset(api, project["id"], owner)
    night = await publish(api, owner, project["id"], mixdown, title="Night Drive", genre="Jazz")
    dawn = await publish(
        api,
        owner,
        project["id"],
        mixdown,
        title="Dawn Chorus",
        artists=["Zoë Field"],
        genre="Ambient",
        description="Birds at first light, recorded in Ålesund.",
    )

    async def ids(query: str) -> list[str]:
        response = await api.client.get(f"/api/tracks?{query}")
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["tracks"]]

    assert await ids("genre=jazz") == [night["id"]]
    assert await ids("genre=JAZZ%20") == [night["id"]]
    assert await ids("genre=metal") == []
    assert await ids("q=night") == [night["id"]]
    assert await ids("q=DRI") == [night["id"]]  # a word's beginning
    assert await ids("q=zoë") == [dawn["id"]]
    assert await ids("q=ålesund%20birds") == [dawn["id"]]  # every word, anywhere
    assert await ids("q=birds%20night") == []
    assert await ids("q=%22%27%2A%29") == []  # punctuation only: no words, nothing found
    assert await ids("q=chorus&genre=jazz") == []
    assert await ids("q=light&sort=plays") == [dawn["id"]]
    unlisted = await api.client.patch(
        f"/api/tracks/{dawn['id']}", json={"visibility": "unlisted"}, headers=owner.headers
    )
    assert unlisted.status_code == 200
    assert await ids("q=birds") == []


async def test_cursors_it_did_not_give_are_refused(api: Api) -> None:
    owner = await api.member("owner")
    await catalog_of(api, owner, ["A", "B", "C"])
    page = (await api.client.get("/api/tracks?sort=new&limit=1")).json()
    assert page["next"] is not None
    for query in ("after=garbage", f"sort=plays&after={page['next']}", "after=WzEsMiwzXQ"):
        response = await api.client.get(f"/api/tracks?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "invalid_cursor"
    for query in ("limit=0", "limit=101", "limit=x", "q=" + "a" * 201):
        assert (await api.client.get(f"/api/tracks?{query}")).status_code == 422, query
