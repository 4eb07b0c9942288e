"""How the SQLite store lays out and reads back rows (issue 15): appends insert many rows per
statement in power-of-two chunks, and reads build events through the slots rather than the
dataclass' __init__; both must give exactly what the plain way gives."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventstore import ANY, EventStoreError, NewEvent, RecordedEvent
from eventstore.model import records_from_rows
from eventstore.sqlite import SQLiteEventStore


@pytest.fixture
async def store(fresh_sqlite_path: Path) -> AsyncIterator[SQLiteEventStore]:
    opened = await SQLiteEventStore.open(fresh_sqlite_path)
    yield opened
    await opened.close()


def _events(count: int, start: int) -> list[NewEvent]:
    return [
        NewEvent(
            "t.x",
            f"e{start + i}".encode(),
            {"n": start + i},
            f"k{start + i}" if i % 3 == 0 else None,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("sizes", [[1, 127, 128, 129], [255, 256, 257], [1000, 3, 1013]])
async def test_appends_of_any_size_land_gapless_and_whole(
    store: SQLiteEventStore, sizes: list[int]
) -> None:
    written = 0
    for size in sizes:
        result = await store.append("s-1", _events(size, written), ANY)
        assert (result.first_position, result.last_position) == (written + 1, written + size)
        written += size
    events = await store.read_all(0, 10_000)
    assert [e.position for e in events] == list(range(1, written + 1))
    assert [e.version for e in events] == list(range(1, written + 1))
    assert [e.data for e in events] == [f"e{i}".encode() for i in range(written)]
    assert [e.metadata for e in events] == [{"n": i} for i in range(written)]
    assert [e.idempotency_key for e in events] == [
        f"k{i}" if (i - _start_of(i, sizes)) % 3 == 0 else None for i in range(written)
    ]
    assert len({e.recorded_at for e in events}) <= len(sizes)  # one time per commit


def _start_of(index: int, sizes: list[int]) -> int:
    start = 0
    for size in sizes:
        if index < start + size:
            return start
        start += size
    raise AssertionError(index)


async def test_a_refused_row_writes_none_of_its_batch(store: SQLiteEventStore) -> None:
    await store.append("s-1", _events(200, 0), ANY)
    # A trigger refuses version 150 of s-2: the third of the append's INSERT statements (rows
    # 129-256) fails after the first two succeeded, and the whole transaction rolls back.
    conn = sqlite3.connect(store.path)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON es_events"
        " WHEN NEW.stream = 's-2' AND NEW.version = 150 BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    conn.close()
    with pytest.raises(EventStoreError, match="refused"):
        await store.append("s-2", _events(300, 0), ANY)
    assert await store.stream_version("s-2") == 0
    assert await store.head_position() == 200
    result = await store.append("s-2", _events(100, 0), ANY)  # the store goes on
    assert (result.first_position, result.last_position) == (201, 300)


def test_rows_become_the_events_the_constructor_builds() -> None:
    moment = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    rows = [
        (1, "s", 1, "t.a", b"\x00\x01", '{"a":1}', None, 7),
        (2, "s", 2, "t.b", b"", "{}", "key", 7),
        (3, "z", 1, "t.a", b"x", '{"b":[1]}', None, 8),
    ]
    calls: list[int] = []

    def convert(raw: int) -> datetime:
        calls.append(raw)
        return moment.replace(microsecond=raw)

    built = records_from_rows(rows, convert)
    expected = [
        RecordedEvent(r[0], r[1], r[2], r[3], r[4], r[5], moment.replace(microsecond=r[7]), r[6])
        for r in rows
    ]
    assert built == expected
    assert [e.metadata for e in built] == [{"a": 1}, {}, {"b": [1]}]
    assert calls == [7, 8]  # once per distinct timestamp
    with pytest.raises(AttributeError):
        built[0].position = 5  # type: ignore[misc]
    assert records_from_rows([(1, "s", 1, "t", b"", "{}", None, moment)]) == [
        RecordedEvent(1, "s", 1, "t", b"", "{}", moment, None)
    ]
