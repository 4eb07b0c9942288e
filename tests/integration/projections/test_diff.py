"""Diff between two versions, on SQLite and Postgres: for random edits from several clients, the
diff from N to M tells every part that differs, with the values each side holds, and its lyrics
runs turn N's lyrics into M's exactly."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore
from harness.databases import open_store
from projections.diff import Diff, compare, diff
from projections.replay import VersionNotFound
from tests.hypothesis_profiles import examples
from tests.integration.projections.recording import STEP, record

MISSING = object()


def _at(document: dict[str, Any], path: str) -> Any:
    """The value at a change's path: list items by id (markers without one by position); None
    where there is none."""
    value: Any = document
    for segment in path.split("/"):
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list):
            found = [v for v in value if isinstance(v, dict) and v.get("id") == segment]
            if not found and segment.isdigit() and int(segment) < len(value):
                found = [value[int(segment)]]
            value = found[0] if found else None
        else:
            return None
    return value


# Read as on or off, as the studio shows them: from missing to false is no change.
SWITCHES = ("muted", "solo", "resolved")


def _parts(document: dict[str, Any]) -> dict[str, Any]:
    """Each part a diff must account for: every meta value, every track, comment and marker by
    id, other roots whole."""
    parts: dict[str, Any] = {}
    for root, value in document.items():
        if root == "meta":
            parts.update({f"meta/{k}": v for k, v in value.items()})
        elif root in ("tracks", "comments", "markers"):
            for item in value:
                shown = {k: bool(v) if k in SWITCHES else v for k, v in item.items()}
                parts[f"{root}/{item['id']}"] = shown | {k: bool(item.get(k)) for k in SWITCHES}
            parts[f"{root} order"] = [v["id"] for v in value]
        elif root != "lyrics":
            parts[root] = value
    return parts


def _check(before: dict[str, Any], after: dict[str, Any], public: dict[str, Any]) -> None:
    lyrics = public["lyrics"]
    assert "".join(r["text"] for r in lyrics if r["op"] != "insert") == before["lyrics"]
    assert "".join(r["text"] for r in lyrics if r["op"] != "delete") == after["lyrics"]
    paths = [c["path"] for c in public["changes"]]
    if before["lyrics"] != after["lyrics"]:
        assert "lyrics" in paths
    for change in public["changes"]:
        if change["path"] == "tracks":  # a reorder: the ids kept, in order
            continue
        if change["path"] != "lyrics":
            assert change["before"] == _at(before, change["path"]), change
            assert change["after"] == _at(after, change["path"]), change
    old, new = _parts(before), _parts(after)
    for part in old.keys() | new.keys():
        if old.get(part, MISSING) == new.get(part, MISSING):
            continue
        if part.endswith(" order"):
            # Adding or deleting is a change of order; a reorder of tracks is said as such.
            assert any(p.startswith(part.split()[0]) for p in paths), part
        else:
            assert any(p == part or p.startswith(part + "/") for p in paths), part


@settings(
    max_examples=examples(20),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(STEP, min_size=1, max_size=30), picks=st.tuples(st.floats(0, 1), st.floats(0, 1))
)
def test_a_diff_tells_every_part_that_differs_and_rebuilds_the_lyrics(
    database_url: str, steps: list[tuple[int, str, int]], picks: tuple[float, float]
) -> None:
    async def check() -> None:
        store = await open_store(database_url)
        try:
            stream, seen = await record(store, steps)
            start, end = (round(p * (len(seen) - 1)) for p in picks)
            for a, b in ((start, end), (end, start), (0, len(seen) - 1)):
                found = await diff(store, stream, a, b)
                assert (found.start.version, found.end.version) == (a, b)
                _check(seen[a], seen[b], found.public())
            # Every other pair, compared as diff compares them (the states are replay's, proven
            # equal to these by test_replay).
            for a, b in itertools.product(range(len(seen)), repeat=2):
                changes, lyrics = compare(seen[a], seen[b])
                _check(
                    seen[a],
                    seen[b],
                    Diff(found.start, found.end, tuple(changes), tuple(lyrics)).public(),
                )
        finally:
            await store.close()

    asyncio.run(check())


async def test_the_same_version_has_no_changes_and_beyond_the_head_is_not_found(
    store: EventStore,
) -> None:
    stream, seen = await record(store, [(0, "track", 1), (0, "type", 2), (1, "bpm", 3)])
    same = await diff(store, stream, 2, 2)
    assert same.changes == ()
    assert [r.op for r in same.lyrics] == ["equal"]
    everything = await diff(store, stream, 0, 3)
    assert [c.kind for c in everything.changes] == ["meta.bpm", "track.added", "lyrics.typed"]
    back = await diff(store, stream, 3, 0)
    assert [c.kind for c in back.changes] == ["meta.bpm", "track.deleted", "lyrics.deleted"]
    assert back.changes[0].before == 63.0
    with pytest.raises(VersionNotFound) as raised:
        await diff(store, stream, 1, len(seen))
    assert raised.value.version == len(seen)
