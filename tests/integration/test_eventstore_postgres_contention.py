"""Several Postgres stores appending to one stream at once: a batch that collided with another
process is written by `es_append_checked`, which numbers an ANY batch without idempotency keys
after the versions it finds under the sequencer lock (so no busy writer can starve another) and
refuses any other batch whose streams moved. Either way each append lands exactly once, where its
result says, in a gapless log."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from eventstore import ANY, AppendResult, ConcurrencyError, NewEvent
from eventstore.postgres import PostgresEventStore

Sent = tuple[AppendResult, list[bytes]]


async def _writer(
    store: PostgresEventStore, writer: int, appends: int, keyed: bool, sent: list[Sent]
) -> None:
    for number in range(appends):
        datas = [f"w{writer}-a{number}-e{i}".encode() for i in range(1 + number % 3)]
        events = [
            NewEvent("e", data, idempotency_key=data.decode() if keyed else None) for data in datas
        ]
        expected = ANY
        if keyed and number % 2:
            expected = await store.stream_version("shared")
        with contextlib.suppress(ConcurrencyError):  # a stale expected version: refused
            sent.append((await store.append("shared", events, expected), datas))


@pytest.mark.parametrize("keyed", [False, True], ids=["any-without-keys", "keys-and-versions"])
async def test_stores_on_one_stream_land_every_append_once_where_it_says(
    fresh_pg_url: str, keyed: bool
) -> None:
    stores = [await PostgresEventStore.open(fresh_pg_url) for _ in range(3)]
    sent: list[Sent] = []
    try:
        await asyncio.gather(*(_writer(stores[w % 3], w, 60, keyed, sent) for w in range(9)))
        log = await stores[0].read_all(0, 100_000)
    finally:
        for store in stores:
            await store.close()
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert [e.version for e in log] == list(range(1, len(log) + 1))
    assert sum(len(datas) for _, datas in sent) == len(log)
    for result, datas in sent:
        held = log[result.first_position - 1 : result.last_position]
        assert [(e.version, e.data) for e in held] == [
            (result.first_version + i, data) for i, data in enumerate(datas)
        ]
