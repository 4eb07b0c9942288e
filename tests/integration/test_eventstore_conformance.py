"""Runs the event store conformance suite against every backend: memory, SQLite and Postgres,
each on a fresh database per test."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from eventstore import EventStore
from eventstore.memory import MemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.sqlite import SQLiteEventStore
from tests.conformance.eventstore import Backend, EventStoreConformance

_KILL_STORE_CONNECTIONS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name LIKE 'jacameno-eventstore%' AND datname = current_database()
"""


class MemoryBackend:
    name = "memory"
    shared = False
    fault_interval = 0.05

    async def open(self, **options: Any) -> EventStore:
        return MemoryEventStore(**options)

    async def reset(self) -> None:
        """Every memory store starts empty."""

    async def inject_fault(self, stores: Sequence[EventStore]) -> None:
        """Nothing under a memory store can fail."""


class SQLiteBackend:
    name = "sqlite"
    shared = True
    fault_interval = 0.002

    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self, **options: Any) -> EventStore:
        return await SQLiteEventStore.open(self.path, **options)

    async def reset(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("DELETE FROM es_snapshots")
            conn.execute("DELETE FROM es_events")
        finally:
            conn.close()

    async def inject_fault(self, stores: Sequence[EventStore]) -> None:
        for store in stores:
            assert isinstance(store, SQLiteEventStore)
            store.interrupt_writer()


class PostgresBackend:
    name = "postgres"
    shared = True
    fault_interval = 0.1

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def open(self, **options: Any) -> EventStore:
        return await PostgresEventStore.open(self.dsn, **options)

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "jacameno-test-admin"}
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def reset(self) -> None:
        await self._admin(
            "TRUNCATE es_events, es_snapshots", "UPDATE es_sequencer SET position = 0"
        )

    async def inject_fault(self, stores: Sequence[EventStore]) -> None:
        await self._admin(_KILL_STORE_CONNECTIONS)
        for store in stores:
            assert isinstance(store, PostgresEventStore)
            await store.terminate_connections()


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite":
        return SQLiteBackend(request.getfixturevalue("fresh_sqlite_path"))
    return PostgresBackend(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request.param, request, tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[EventStore]:
    opened = await backend.open()
    yield opened
    await opened.close()


class TestEventStore(EventStoreConformance):
    pass
