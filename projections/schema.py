"""The tables the projection runner uses, per database kind (proved by `tests/migration`)."""

from __future__ import annotations


def _failures(text: str, bigint: str) -> dict[str, str]:
    return {
        "projection": text,
        "position": bigint,
        "stream": text,
        "version": bigint,
        "type": text,
        "error": text,
        "traceback": text,
        "failed_at": bigint,
        "attempts": bigint,
    }


def _checkpoints(text: str, bigint: str) -> dict[str, str]:
    return {
        "name": text,
        "position": bigint,
        "updated_at": bigint,
        "failing_since": bigint,
        "last_error": text,
    }


POSTGRES: dict[str, dict[str, str]] = {
    "projection_checkpoints": _checkpoints("text", "bigint"),
    "projection_failures": _failures("text", "bigint"),
}

SQLITE: dict[str, dict[str, str]] = {
    "projection_checkpoints": _checkpoints("TEXT", "BIGINT"),
    "projection_failures": _failures("TEXT", "BIGINT"),
}

UNIQUE: dict[str, list[tuple[str, ...]]] = {
    "projection_checkpoints": [("name",)],
    "projection_failures": [("projection", "position")],
}
