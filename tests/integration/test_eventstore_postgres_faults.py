"""Postgres connections of a node that stalls: the `es_sequencer` lock that orders every
node's commits is never held across a client round trip, so a writer whose link goes silent at
its worst moment holds up no other writer; a writer that does hold it while waiting for its
client (a node of an older version) is ended within about a second; the session settings that
bound such waits are on every connection, and the database URL can override them; a read
model's transaction on a silent link frees its row locks within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import asyncpg
import pytest

from dbdrivers.postgres import server_settings
from eventstore import AppendResult, NewEvent, StoreUnavailableError
from eventstore.pgsession import WRITER
from eventstore.pgwriter import PostgresWriter
from eventstore.postgres import PostgresEventStore
from harness.waiting import eventually
from sqldb import PostgresDatabase
from tests.faultproxy import proxied

pytestmark = pytest.mark.slow

STALL = 3.0  # seconds the silent writer stays silent
BOUND = 2.0  # seconds the other writer may be held up, at most


def _event(i: int) -> NewEvent:
    return NewEvent("e", str(i).encode())


async def _keep_appending(
    store: PostgresEventStore, stream: str, done: list[tuple[float, AppendResult]]
) -> None:
    i = 0
    while True:
        i += 1
        try:
            done.append((time.monotonic(), await store.append(stream, [_event(i)])))
        except StoreUnavailableError:
            await asyncio.sleep(0)


async def test_a_writer_silent_at_its_worst_moment_holds_up_no_other_writer(
    fresh_pg_url: str,
) -> None:
    async with proxied(fresh_pg_url, watch=b"jacameno-eventstore-writer") as proxy:
        # The proxy goes silent the moment the stalled store's writer waits for its client
        # inside a transaction (if that ever happens); else after a second of contention.
        proxy.on_wait_in_transaction = proxy.silence
        stalled = await PostgresEventStore.open(proxy.url(fresh_pg_url))
        other = await PostgresEventStore.open(fresh_pg_url)
        theirs: list[tuple[float, AppendResult]] = []
        ours: list[tuple[float, AppendResult]] = []
        tasks = [
            asyncio.create_task(_keep_appending(stalled, "shared", theirs)),
            asyncio.create_task(_keep_appending(other, "shared", ours)),
        ]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proxy.silenced.wait(), 1.0)
            proxy.silence()
            silent_at = time.monotonic()
            await asyncio.sleep(STALL)
            times = [silent_at, *(t for t, _ in ours if t >= silent_at), time.monotonic()]
            held = max(b - a for a, b in itertools.pairwise(times))
            assert held < BOUND, (
                f"the other writer was held up {held:.2f} s"
                f" ({proxy.waits_in_transaction} waits in a transaction seen)"
            )
            proxy.resume()
            count = len(theirs)
            await eventually(lambda: len(theirs) > count, 20)  # the stalled one works again
        finally:
            proxy.resume()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await stalled.close()
            await other.close()
        reader = await PostgresEventStore.open(fresh_pg_url)
        try:
            log = await reader.read_all(0, 1_000_000)
        finally:
            await reader.close()
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert [e.version for e in log] == list(range(1, len(log) + 1))
    for _, result in theirs + ours:
        assert log[result.first_position - 1].version == result.first_version


async def test_the_writer_never_waits_for_its_client_inside_a_transaction(
    fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    write_checked = PostgresWriter._write_checked

    async def counted(self: PostgresWriter, *args: Any) -> Any:
        nonlocal checked
        checked += 1
        return await write_checked(self, *args)

    monkeypatch.setattr(PostgresWriter, "_write_checked", counted)
    async with proxied(fresh_pg_url, watch=b"jacameno-eventstore-writer") as proxy:
        watched = await PostgresEventStore.open(proxy.url(fresh_pg_url))
        other = await PostgresEventStore.open(fresh_pg_url)
        done: list[tuple[float, AppendResult]] = []
        tasks = [
            asyncio.create_task(_keep_appending(store, "shared", done))
            for store in (watched, other, watched, other)
        ]
        try:
            await eventually(lambda: checked >= 20, 20)  # collisions, and the path after them
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await watched.close()
            await other.close()
    assert proxy.waits_in_transaction == 0


async def test_a_writer_holding_the_sequencer_while_idle_on_its_client_is_ended(
    fresh_pg_url: str,
) -> None:
    # A writer of an older version, stalled inside its transaction after taking the sequencer;
    # no idle-in-transaction timeout of its own.
    holder = await asyncpg.connect(
        fresh_pg_url, server_settings={"application_name": "jacameno-eventstore-writer"}
    )
    store = await PostgresEventStore.open(fresh_pg_url)
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1 FROM es_sequencer WHERE id = 1 FOR UPDATE")
        started = time.monotonic()
        async with asyncio.timeout(10):
            result = await store.append("s", [_event(1)])
        waited = time.monotonic() - started
        print(f"an append behind a writer stalled in its transaction waited {waited:.3f} s")
        assert waited < BOUND + 0.5
        assert result.first_position == 1
        assert holder.is_closed() or not await _answers(holder)
    finally:
        holder.terminate()
        await store.close()


async def _answers(conn: asyncpg.Connection) -> bool:
    try:
        await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        return False
    return True


async def test_every_store_connection_bounds_waits_and_the_url_overrides_them(
    fresh_pg_url: str,
) -> None:
    store = await PostgresEventStore.open(fresh_pg_url + "?lock_timeout=3s")
    try:
        await store.append("s", [_event(1)])
        writer = store._writer.connection
        assert writer is not None
        assert await writer.fetchval("SHOW lock_timeout") == "3s"
        assert await writer.fetchval("SHOW statement_timeout") == WRITER["statement_timeout"]
        rows = await store._fetch(
            "SELECT current_setting('idle_in_transaction_session_timeout'),"
            " current_setting('tcp_keepalives_idle')"
        )
        assert tuple(rows[0]) == ("2s", "2")
    finally:
        await store.close()
    assert "lock_timeout" not in server_settings("postgresql://h/db?lock_timeout=5s", "x", WRITER)
    assert server_settings("postgresql://h/db", "x", WRITER)["lock_timeout"] == "1s"


async def test_a_transaction_of_a_silent_node_frees_its_row_locks_within_seconds(
    fresh_pg_url: str,
) -> None:
    # A projection runner locks its checkpoint row across round trips; its node's link goes
    # silent in the middle: another node's runner gets the row once the server ends the idle
    # transaction (idle_in_transaction_session_timeout), not when TCP gives up hours later.
    other = await asyncpg.connect(fresh_pg_url)
    async with proxied(fresh_pg_url) as proxy:
        stalled = await PostgresDatabase.open(proxy.url(fresh_pg_url))
        try:
            await other.execute(
                "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ('p', 0, 0)"
            )
            locked = asyncio.Event()

            async def hold() -> None:
                async with stalled.transaction() as conn:
                    await conn.fetchval(
                        "SELECT position FROM projection_checkpoints WHERE name = 'p' FOR UPDATE"
                    )
                    proxy.silence()
                    locked.set()
                    await conn.execute("UPDATE projection_checkpoints SET position = 1")

            holder = asyncio.create_task(hold())
            await locked.wait()
            started = time.monotonic()
            async with asyncio.timeout(10):
                await other.execute(
                    "SELECT 1 FROM projection_checkpoints WHERE name = 'p' FOR UPDATE"
                )
            waited = time.monotonic() - started
            print(f"a row locked by a silent node's transaction was free after {waited:.3f} s")
            assert waited < BOUND + 1.0
            proxy.resume()  # the holder learns that its session was ended
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)
        finally:
            proxy.resume()
            await stalled.close()
            await other.close()
