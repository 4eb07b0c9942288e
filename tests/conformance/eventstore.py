"""The conformance suite of the `EventStore` Protocol: every backend must pass all of it.

A backend's test module subclasses `EventStoreConformance` and provides three fixtures:

- `backend`: a `tests.conformance.eventstore_support.Backend` over a fresh database;
- `store`: an open store of that backend on its empty database, closed after the test;
- `sql_backend`: like `backend`, for the backends whose stores share one log (SQLite, Postgres),
  so that two stores can stand for two processes.
"""

from __future__ import annotations

from tests.conformance.eventstore_concurrency import ConcurrencyTests
from tests.conformance.eventstore_contract import ContractTests
from tests.conformance.eventstore_model import ModelTests
from tests.conformance.eventstore_subscriptions import SubscriptionTests
from tests.conformance.eventstore_support import Backend

__all__ = ["Backend", "EventStoreConformance"]


class EventStoreConformance(ContractTests, SubscriptionTests, ModelTests, ConcurrencyTests):
    """Appends, reads, optimistic concurrency, idempotency, snapshots, refused input, closing,
    subscriptions, a model-based stateful test, and concurrent writers under injected faults."""
