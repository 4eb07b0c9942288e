"""The analytics fold on SQLite and Postgres: exact counts per user, hour and day (across the
boundaries), sessions timed from join to leave, sessions of a node that died closed at its last
event, folding in any batches giving the same tables, the runner never counting twice, and a
rebuild equal to the model built incrementally."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import EventStore
from projections import analytics
from projections.analytics import ABANDON_AFTER_MS, DAY_MS, SESSION_CAP_MS, analytics_projection
from projections.runner import ProjectionRunner
from projections.tables import live as live_names
from sqldb import Database
from tests.hypothesis_profiles import examples
from tests.integration.projections.activity import (
    EVENING,
    HOUR,
    MINUTE,
    Log,
    Tables,
    edit,
    joined,
    left,
    snapshot,
)

DAY_START = EVENING - EVENING % DAY_MS


async def test_edits_and_bytes_are_counted_per_user_hour_and_day_across_boundaries(
    db: Database,
) -> None:
    log = Log()
    last_ms = EVENING + HOUR - 1  # 23:59:59.999
    log.add("p1", EVENING + 5 * MINUTE, edit("ann", "n1", size=3))
    log.add("p1", last_ms, edit("ann", "n1", size=4))
    log.add("p1", last_ms, edit("bob", "n1", size=100))
    log.add("p1", EVENING + HOUR, edit("ann", "n1", size=5))  # the next day, 00:00
    log.add("p2", EVENING + HOUR + 1, edit("ann", "n2", size=7))
    log.add("p1", EVENING + 2 * HOUR, joined("bob", "n1", "c1"))
    async with Tables(db) as tables:
        await tables.fold([log.recorded])  # one batch across both boundaries
        assert await tables.rows("analytics_hours") == [
            ("p1", EVENING, "ann", 2, 7, 0),
            ("p1", EVENING, "bob", 1, 100, 0),
            ("p1", EVENING + HOUR, "ann", 1, 5, 0),
            ("p1", EVENING + 2 * HOUR, "bob", 0, 0, 1),
            ("p2", EVENING + HOUR, "ann", 1, 7, 0),
        ]
        assert await tables.rows("analytics_days") == [
            ("p1", DAY_START, "ann", 2, 7, 0),
            ("p1", DAY_START, "bob", 1, 100, 0),
            ("p1", DAY_START + DAY_MS, "ann", 1, 5, 0),
            ("p1", DAY_START + DAY_MS, "bob", 0, 0, 1),
            ("p2", DAY_START + DAY_MS, "ann", 1, 7, 0),
        ]
        # A later batch adds to the stored counts.
        log.add("p1", last_ms, edit("ann", "n1", size=1))
        await tables.fold([log.recorded[-1:]])
        assert (await tables.rows("analytics_hours"))[0] == ("p1", EVENING, "ann", 3, 8, 0)
        assert (await tables.rows("analytics_days"))[0] == ("p1", DAY_START, "ann", 3, 8, 0)
        assert await tables.rows("analytics_nodes") == [
            ("n1", EVENING + 5 * MINUTE, EVENING + 2 * HOUR, 6),
            ("n2", EVENING + HOUR + 1, EVENING + HOUR + 1, 1),
        ]


async def test_a_session_lasts_from_its_join_to_its_leave(db: Database) -> None:
    log = Log()
    log.add("p1", EVENING, joined("ann", "n1", "c1", role="owner"))
    log.add("p1", EVENING + MINUTE, joined("bob", "n1", "c2", role="viewer"))
    log.add("p1", EVENING + 90_500, left("ann", "n1", "c1", code=1001))
    async with Tables(db) as tables:
        await tables.fold([log.recorded[:2], log.recorded[2:]])  # the leave in a later batch
        sessions = await tables.sessions()
    ann, bob = sessions["c1"], sessions["c2"]
    assert (ann["position"], ann["user_id"], ann["node"], ann["role"], ann["dialect"]) == (
        1,
        "ann",
        "n1",
        "owner",
        "y-websocket",
    )
    assert (ann["joined_at"], ann["left_at"], ann["ended_at"], ann["close_code"]) == (
        EVENING,
        EVENING + 90_500,
        EVENING + 90_500,
        1001,
    )
    assert (ann["end_reason"], ann["seconds"]) == ("left", 90.5)
    assert (bob["left_at"], bob["ended_at"], bob["end_reason"], bob["seconds"]) == (
        None,
        None,
        None,
        None,
    )


async def test_a_connection_that_rejoins_has_one_session_per_join(db: Database) -> None:
    log = Log()
    log.add("p1", EVENING, joined("ann", "n1", "c1"))
    log.add("p1", EVENING + MINUTE, left("ann", "n1", "c1"))
    log.add("p1", EVENING + 2 * MINUTE, joined("ann", "n1", "c1"))
    log.add("p1", EVENING + 5 * MINUTE, left("ann", "n1", "c1"))
    log.add("p1", EVENING + 6 * MINUTE, left("ann", "n1", "gone"))  # its join is not logged
    async with Tables(db) as tables:
        await tables.fold([log.recorded])
        rows = await tables.rows("analytics_sessions")
    assert [(r[0], r[7], r[8], r[12]) for r in rows] == [
        (1, EVENING, EVENING + MINUTE, 60.0),
        (3, EVENING + 2 * MINUTE, EVENING + 5 * MINUTE, 180.0),
    ]


async def test_a_session_of_a_node_that_died_ends_at_its_nodes_last_event(db: Database) -> None:
    log = Log()
    log.add("p1", EVENING, joined("ann", "dead", "c1"))
    last = EVENING + 10 * MINUTE
    log.add("p1", last, edit("ann", "dead", "c1"))
    log.add("p2", last + 5 * MINUTE, edit("cy", "dead"))  # the node was alive here
    node_last = last + 5 * MINUTE
    async with Tables(db) as tables:
        await tables.fold([log.recorded])
        # Another node goes on logging: within the bound, the session is still open.
        log.add("p1", node_last + ABANDON_AFTER_MS, edit("bob", "alive"))
        await tables.fold([log.recorded[-1:]])
        assert (await tables.sessions())["c1"]["ended_at"] is None
        # Past it, the session is closed where its node was last heard of.
        log.add("p1", node_last + ABANDON_AFTER_MS + 1, edit("bob", "alive"))
        await tables.fold([log.recorded[-1:]])
        ann = (await tables.sessions())["c1"]
        assert (ann["ended_at"], ann["end_reason"], ann["seconds"]) == (
            node_last,
            "abandoned",
            15 * 60.0,
        )
        assert ann["left_at"] is None
        # The node was alive after all (a quiet node, not a dead one): the session reopens,
        # and its leave ends it.
        log.add("p1", node_last + ABANDON_AFTER_MS + 2, edit("ann", "dead", "c1"))
        await tables.fold([log.recorded[-1:]])
        assert (await tables.sessions())["c1"]["end_reason"] is None
        log.add("p1", node_last + ABANDON_AFTER_MS + 3, left("ann", "dead", "c1"))
        await tables.fold([log.recorded[-1:]])
        ann = (await tables.sessions())["c1"]
        assert (ann["end_reason"], ann["ended_at"]) == ("left", node_last + ABANDON_AFTER_MS + 3)


async def test_a_session_never_left_is_capped_even_while_its_node_lives(db: Database) -> None:
    log = Log()
    log.add("p1", EVENING, joined("ann", "n1", "c1"))
    at = EVENING
    while at <= EVENING + SESSION_CAP_MS:
        at += 20 * MINUTE
        log.add("p1", at, edit("bob", "n1", "c2"))
    async with Tables(db) as tables:
        await tables.fold([log.recorded])
        ann = (await tables.sessions())["c1"]
    assert (ann["end_reason"], ann["seconds"]) == ("abandoned", SESSION_CAP_MS / 1000)


# -- any batching gives the same tables, and the same as the rules say -----------------------

PROJECTS, USERS, NODES, CONNECTIONS = ("p1", "p2"), ("ann", "bob", "cy"), ("n1", "n2"), "abcd"
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "join", "leave"]),
        st.sampled_from(PROJECTS),
        st.sampled_from(USERS),
        st.sampled_from(NODES),
        st.sampled_from(CONNECTIONS),
        # time steps that cross hours and days, the abandon bound and the cap; or go back a
        # little (another node's clock)
        st.sampled_from([0, 1, 5_000, -5_000, 20 * MINUTE, ABANDON_AFTER_MS + 1, 7 * HOUR]),
        st.integers(0, 300),
    ),
    max_size=40,
)


def log_of(steps: list[tuple[str, str, str, str, str, int, int]]) -> Log:
    log, at = Log(), EVENING - 30 * MINUTE
    for kind, project, user, node, connection, step, size in steps:
        at += step
        if kind == "edit":
            log.add(project, at, edit(user, node, connection, size))
        elif kind == "join":
            log.add(project, at, joined(user, node, connection))
        else:
            log.add(project, at, left(user, node, connection))
    return log


def expected_sessions(log: Log) -> list[tuple[Any, ...]]:
    """The sessions as docs/analytics.md states the rules, from the whole log at once."""
    ms = analytics.millis
    last: dict[str, int] = {}
    for e in log.recorded:
        node = e.metadata["node"]
        last[node] = max(last.get(node, ms(e)), ms(e))
    now = max(last.values(), default=0)
    sessions: dict[int, list[Any]] = {}
    for e in log.recorded:
        key = (e.stream, e.metadata["connection_id"])
        if e.type == "session.joined":
            sessions[e.position] = [e, key, None]
        elif e.type == "session.left":
            open_ = [p for p, s in sessions.items() if s[1] == key and s[2] is None]
            if open_:
                sessions[max(open_)][2] = e
    rows = []
    for position, (join, _, leave) in sorted(sessions.items()):
        start, node = ms(join), join.metadata["node"]
        end: int | None
        reason: str | None
        if leave is not None:
            end, reason = ms(leave), "left"
        elif last[node] < now - ABANDON_AFTER_MS or start < now - SESSION_CAP_MS:
            end, reason = max(start, min(last[node], start + SESSION_CAP_MS)), "abandoned"
        else:
            end = reason = None
        rows.append((position, start, end, reason))
    return rows


@pytest.fixture
async def three_tables(db: Database) -> AsyncIterator[tuple[Tables, Tables, Tables]]:
    """Three sets of the analytics tables for a whole Hypothesis test, each example emptying
    them (made and dropped for each example, they took most of its time on Postgres)."""
    async with Tables(db) as whole, Tables(db) as batched, Tables(db) as single:
        yield whole, batched, single


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS, cuts=st.lists(st.integers(0, 40), max_size=6))
async def test_any_batching_folds_to_the_same_tables_as_the_rules_say(
    three_tables: tuple[Tables, Tables, Tables],
    steps: list[tuple[str, str, str, str, str, int, int]],
    cuts: list[int],
) -> None:
    log = log_of(steps)
    bounds = sorted({0, len(log.recorded), *(c for c in cuts if c < len(log.recorded))})
    batches = [log.recorded[a:b] for a, b in itertools.pairwise(bounds)]
    whole, batched, single = three_tables
    for tables in three_tables:
        await tables.clear()
    await whole.fold([log.recorded] if log.recorded else [])
    await batched.fold(batches)
    await single.fold([e] for e in log.recorded)
    found = await whole.everything()
    assert await batched.everything() == found
    assert await single.everything() == found
    sessions = [(r[0], r[7], r[10], r[11]) for r in found["analytics_sessions"]]
    assert sessions == expected_sessions(log)
    edits = [e for e in log.recorded if e.type == "doc.updated"]
    hours = found["analytics_hours"]
    assert sum(r[3] for r in hours) == len(edits)
    assert sum(r[4] for r in hours) == sum(len(e.data) for e in edits)
    assert sum(r[5] for r in hours) == len(sessions)
    days = found["analytics_days"]
    assert [sum(r[i] for r in days) for i in (3, 4, 5)] == [
        sum(r[i] for r in hours) for i in (3, 4, 5)
    ]


# -- through the runner ----------------------------------------------------------------------


async def append_studio(store: EventStore, project: str) -> None:
    await store.append(f"project-{project}", [joined("ann", "n1", "c-" + project)])
    for n in range(7):
        await store.append(f"project-{project}", [edit("ann" if n % 2 else "bob", "n1", size=n)])
    await store.append(f"project-{project}", [left("ann", "n1", "c-" + project)])
    await store.append("user-ann", [edit("ann", "n1")])  # not a project's: not counted


async def totals(db: Database) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT project_id, user_id, CAST(SUM(edits) AS BIGINT) AS e,"
        " CAST(SUM(bytes) AS BIGINT) AS b, CAST(SUM(sessions) AS BIGINT) AS s"
        " FROM analytics_hours GROUP BY project_id, user_id ORDER BY project_id, user_id"
    )
    return [(r["project_id"], r["user_id"], r["e"], r["b"], r["s"]) for r in rows]


async def test_the_runner_counts_each_event_once_across_restarts(
    store: EventStore, db: Database
) -> None:
    await append_studio(store, "p1")
    runner = ProjectionRunner(store, db, [analytics_projection()], batch_size=3)
    await runner.start()
    await runner.wait_for(await store.head_position())
    await runner.stop()
    expected = [("p1", "ann", 3, 1 + 3 + 5, 1), ("p1", "bob", 4, 0 + 2 + 4 + 6, 0)]
    assert await totals(db) == expected
    # A restarted runner resumes from its checkpoint: the batches it applied are not again.
    await append_studio(store, "p2")
    runner = ProjectionRunner(store, db, [analytics_projection()], batch_size=4)
    await runner.start()
    await runner.wait_for(await store.head_position())
    await runner.stop()
    assert await totals(db) == [
        *expected,
        ("p2", "ann", 3, 9, 1),
        ("p2", "bob", 4, 12, 0),
    ]


async def test_a_rebuild_equals_the_incrementally_built_model(
    store: EventStore, db: Database
) -> None:
    for project in ("p1", "p2", "p3"):
        await append_studio(store, project)
    await store.append("project-p1", [joined("bob", "n2", "open")])  # still open
    runner = ProjectionRunner(store, db, [analytics_projection()], batch_size=5)
    await runner.start()
    try:
        await runner.wait_for(await store.head_position())
        live = await snapshot(db, live_names(analytics.TABLES))
        assert len(live["analytics_sessions"]) == 4
        assert await runner.rebuild("analytics") == await store.head_position()
        assert await snapshot(db, live_names(analytics.TABLES)) == live
    finally:
        await runner.stop()
