"""The tables the application reads and writes, per database kind (proved by `tests/migration`):
accounts and refresh sessions. The read models' tables are declared with their projections
(projections/tables.py) and created by the runner."""

from __future__ import annotations

_TABLES: dict[str, dict[str, str]] = {
    "users": {
        "id": "text",
        "email": "text",
        "password_hash": "text",
        "display_name": "text",
        "avatar_url": "text",
        "preferences": "text",
        "created_at": "bigint",
        "updated_at": "bigint",
    },
    "refresh_sessions": {
        "id": "text",
        "user_id": "text",
        "generation": "bigint",
        "revoked": "smallint",
        "created_at": "bigint",
        "expires_at": "bigint",
        "rotated_at": "bigint",
    },
}

POSTGRES: dict[str, dict[str, str]] = _TABLES
SQLITE: dict[str, dict[str, str]] = {
    table: {column: kind.upper() for column, kind in columns.items()}
    for table, columns in _TABLES.items()
}

UNIQUE: dict[str, list[tuple[str, ...]]] = {
    "users": [("id",), ("email",)],
    "refresh_sessions": [("id",)],
}
