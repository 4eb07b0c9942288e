"""Reads of many concurrent callers made as one (jacameno.coalesce.Coalesced): never an answer
older than its question, a failure reaches every caller of its read, and a caller that gives up
leaves the read to the others."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from harness.waiting import eventually
from jacameno.coalesce import Coalesced


class Table:
    """Rows by key; each read records the keys it was asked and, while `held`, waits for
    `release` before it looks at the rows (so a test can change them during a read)."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows
        self.reads: list[list[str]] = []
        self.held = False
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    async def read_many(self, keys: Sequence[str]) -> Mapping[str, int]:
        self.reads.append(list(keys))
        if self.held:
            await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return {k: self.rows[k] for k in keys if k in self.rows}


async def test_keys_asked_together_are_read_together() -> None:
    table = Table({f"u{i}": i for i in range(50)})
    reads = Coalesced(table.read_many)
    found = await asyncio.gather(*(reads.get(f"u{i}") for i in range(50)), reads.get("nobody"))
    assert found == [*range(50), None]
    assert len(table.reads) == 1
    assert sorted(table.reads[0]) == sorted([*(f"u{i}" for i in range(50)), "nobody"])


async def test_a_key_asked_during_a_read_waits_for_a_read_that_begins_after_it() -> None:
    table = Table({"bob": 1, "eve": 2})
    table.held = True
    reads = Coalesced(table.read_many)
    first = asyncio.create_task(reads.get("bob"))
    await eventually(lambda: len(table.reads) == 1)
    del table.rows["bob"]  # deleted while the first read is under way
    later = [asyncio.create_task(reads.get(k)) for k in ("bob", "eve")]
    table.release.set()
    # The first read may or may not have seen the row (it was under way); the later callers
    # get a read that began after their question, which does not find the deleted user.
    await first
    assert await asyncio.gather(*later) == [None, 2]
    assert table.reads[1] == ["bob", "eve"]
    assert len(table.reads) == 2


async def test_a_failed_read_fails_each_of_its_callers_and_the_next_read_is_made() -> None:
    table = Table({"bob": 1})
    table.failure = ConnectionError("database gone")
    reads = Coalesced(table.read_many)
    outcomes = await asyncio.gather(reads.get("bob"), reads.get("eve"), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    table.failure = None
    assert await reads.get("bob") == 1


async def test_a_caller_that_gives_up_leaves_the_read_to_the_others() -> None:
    table = Table({"bob": 1, "eve": 2})
    table.held = True
    reads = Coalesced(table.read_many)
    impatient = asyncio.create_task(reads.get("bob"))
    patient = asyncio.create_task(reads.get("eve"))
    await eventually(lambda: len(table.reads) == 1)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    table.release.set()
    assert await patient == 2
    assert reads.reads == 1
