"""The database and the log every projection test runs on, SQLite and Postgres alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventstore import EventStore
from harness.databases import open_store
from sqldb import Database, open_database
from tests.integration.projections.support import create_counts


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    await create_counts(database)
    yield database
    await database.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    s = await open_store(database_url)
    yield s
    await s.close()
