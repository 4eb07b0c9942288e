"""The settings of a server under test or under load: argon2 at its cheapest (tests and
benchmarks log many users in; login has its own benchmark, which asks for the real cost) and
rate limits out of the way, as environment variables for a subprocess or as `Settings` for an
app in this process."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from jacameno.settings import Settings

UNLIMITED = "1000000"  # requests per window: far above what any test or benchmark sends

CHEAP_PASSWORDS = {
    "JACAMENO_ARGON2_TIME_COST": "1",
    "JACAMENO_ARGON2_MEMORY_KIB": "1024",
    "JACAMENO_ARGON2_PARALLELISM": "1",
}

NO_RATE_LIMITS = {
    "JACAMENO_AUTH_RATE_LIMIT": UNLIMITED,
    "JACAMENO_AUTH_ACCOUNT_RATE_LIMIT": UNLIMITED,
    "JACAMENO_API_RATE_LIMIT": UNLIMITED,
}


def new_jwt_secret() -> str:
    """A random signing key of 64 hex digits (long enough for production's check too)."""
    return secrets.token_hex(32)


def environment(
    database_url: str,
    data_dir: Path | str,
    *,
    jwt_secret: str | None = None,
    auto_migrate: bool = False,
    cheap_passwords: bool = True,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`JACAMENO_*` variables for a test server on `database_url` with its files in `data_dir`;
    `overrides` (full variable names) come last."""
    return {
        "JACAMENO_ENV": "test",
        "JACAMENO_DATA_DIR": str(data_dir),
        "JACAMENO_DATABASE_URL": database_url,
        "JACAMENO_JWT_SECRET": jwt_secret or new_jwt_secret(),
        "JACAMENO_AUTO_MIGRATE": "true" if auto_migrate else "false",
        **(CHEAP_PASSWORDS if cheap_passwords else {}),
        **NO_RATE_LIMITS,
        **(overrides or {}),
    }


def app_settings(
    tmp_path: Path,
    database_url: str | None = None,
    redis_url: str | None = None,
    **overrides: str,
) -> Settings:
    """Settings of an app in this process, its files under `tmp_path`: on `database_url` (a
    migrated database), else on a SQLite file that the app migrates at start. `overrides` are
    setting names without the prefix (`auth_rate_limit="2"`)."""
    extra = {f"JACAMENO_{name.upper()}": value for name, value in overrides.items()}
    if redis_url is not None:
        extra = {"JACAMENO_REDIS_URL": redis_url, **extra}
    environ = environment(
        database_url or f"sqlite:///{tmp_path / 'app.db'}",
        tmp_path / "data",
        auto_migrate=database_url is None,
        overrides=extra,
    )
    return Settings.from_env(environ)
