"""The tables the projection runner uses, per database kind (proved by `tests/migration`)."""

from __future__ import annotations

# Each table's columns, as "text" or "bigint" (spelled per database kind below).
_TABLES: dict[str, dict[str, str]] = {
    "projection_checkpoints": {
        "name": "text",
        "position": "bigint",
        "updated_at": "bigint",
        "failing_since": "bigint",
        "last_error": "text",
        "schema_version": "bigint",
    },
    "projection_failures": {
        "projection": "text",
        "position": "bigint",
        "stream": "text",
        "version": "bigint",
        "type": "text",
        "error": "text",
        "traceback": "text",
        "failed_at": "bigint",
        "attempts": "bigint",
    },
}

POSTGRES: dict[str, dict[str, str]] = _TABLES

SQLITE: dict[str, dict[str, str]] = {
    table: {column: kind.upper() for column, kind in columns.items()}
    for table, columns in _TABLES.items()
}

UNIQUE: dict[str, list[tuple[str, ...]]] = {
    "projection_checkpoints": [("name",)],
    "projection_failures": [("projection", "position")],
}
