"""The tables the projection runner and blame's checkpoints use, per database kind (proved by
`tests/migration`)."""

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

# Blame's checkpoints (projections/blame_checkpoints.py), `data` their stored form.
_BLAME = {"stream": "text", "version": "bigint", "format": "bigint", "size": "bigint"}

POSTGRES: dict[str, dict[str, str]] = {
    **_TABLES,
    "blame_checkpoints": {**_BLAME, "data": "bytea", "saved_at": "bigint"},
}

SQLITE: dict[str, dict[str, str]] = {
    table: {column: kind.upper() for column, kind in columns.items()}
    for table, columns in POSTGRES.items()
}
SQLITE["blame_checkpoints"]["data"] = "BLOB"

UNIQUE: dict[str, list[tuple[str, ...]]] = {
    "projection_checkpoints": [("name",)],
    "projection_failures": [("projection", "position")],
    "blame_checkpoints": [("stream", "version")],
}
