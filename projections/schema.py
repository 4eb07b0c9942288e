"""The tables the projection runner uses, per database kind (proved by `tests/migration`)."""

from __future__ import annotations

POSTGRES: dict[str, dict[str, str]] = {
    "projection_checkpoints": {"name": "text", "position": "bigint", "updated_at": "bigint"},
}

SQLITE: dict[str, dict[str, str]] = {
    "projection_checkpoints": {"name": "TEXT", "position": "BIGINT", "updated_at": "BIGINT"},
}

UNIQUE: dict[str, list[tuple[str, ...]]] = {"projection_checkpoints": [("name",)]}
