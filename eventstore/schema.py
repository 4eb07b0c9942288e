"""The tables and columns the SQL backends read and write, per database kind.

`tests/migration` proves that `migrations/` adds up to exactly this; change both together."""

from __future__ import annotations

# table -> column -> type as the database reports it
POSTGRES: dict[str, dict[str, str]] = {
    "es_sequencer": {"id": "smallint", "position": "bigint"},
    "es_events": {
        "position": "bigint",
        "stream": "text",
        "version": "bigint",
        "type": "text",
        "data": "bytea",
        "metadata": "jsonb",
        "idempotency_key": "text",
        "recorded_at": "timestamp with time zone",
    },
    "es_snapshots": {
        "stream": "text",
        "version": "bigint",
        "state": "bytea",
        "metadata": "jsonb",
        "recorded_at": "timestamp with time zone",
    },
}

SQLITE: dict[str, dict[str, str]] = {
    "es_events": {
        "position": "INTEGER",
        "stream": "TEXT",
        "version": "INTEGER",
        "type": "TEXT",
        "data": "BLOB",
        "metadata": "TEXT",
        "idempotency_key": "TEXT",
        "recorded_at": "INTEGER",
    },
    "es_snapshots": {
        "stream": "TEXT",
        "version": "INTEGER",
        "state": "BLOB",
        "metadata": "TEXT",
        "recorded_at": "INTEGER",
    },
}

# Unique indexes the backends rely on for correctness: table -> sets of columns.
UNIQUE: dict[str, list[tuple[str, ...]]] = {
    "es_events": [("position",), ("stream", "version"), ("stream", "idempotency_key")],
    "es_snapshots": [("stream", "version")],
}
