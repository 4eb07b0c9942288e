"""Settings, read once from `JACAMENO_*` environment variables into a typed object.

With nothing set, the server runs on the embedded default: SQLite in the data folder, the
in-process bus, files on local disk. With `JACAMENO_ENV=production`, every setting that would
otherwise fall back to that default must be given: a missing one is an error at start."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Environment = Literal["development", "test", "production"]
_ENVIRONMENTS = ("development", "test", "production")
_REQUIRED_IN_PRODUCTION = ("DATABASE_URL", "REDIS_URL", "JWT_SECRET")


class SettingsError(Exception):
    """A setting is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment
    data_dir: Path
    database_url: str
    redis_url: str | None
    jwt_secret: str
    host: str
    port: int
    log_level: str
    auto_migrate: bool

    @property
    def database_kind(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"

    @property
    def sqlite_path(self) -> Path:
        """The file of a `sqlite:///relative` or `sqlite:////absolute` URL."""
        if self.database_kind != "sqlite":
            raise SettingsError("the database is not SQLite")
        return Path(self.database_url.removeprefix("sqlite:///"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_vars = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env_vars.get(f"JACAMENO_{name}")
            return value if value else None

        env = get("ENV") or "development"
        if env not in _ENVIRONMENTS:
            raise SettingsError(f"JACAMENO_ENV must be one of {', '.join(_ENVIRONMENTS)}")
        if env == "production":
            missing = [f"JACAMENO_{n}" for n in _REQUIRED_IN_PRODUCTION if get(n) is None]
            if missing:
                raise SettingsError(f"production mode needs {', '.join(missing)}")
        data_dir = Path(get("DATA_DIR") or ".jacameno")
        database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'jacameno.db'}"
        _check_database_url(database_url)
        redis_url = get("REDIS_URL")
        if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("JACAMENO_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        port_text = get("PORT") or "8000"
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SettingsError(f"JACAMENO_PORT must be a port number, not {port_text!r}")
        auto = get("AUTO_MIGRATE")
        if auto is not None and auto not in ("0", "1", "true", "false"):
            raise SettingsError("JACAMENO_AUTO_MIGRATE must be true or false")
        return cls(
            env=env,  # type: ignore[arg-type]
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            jwt_secret=get("JWT_SECRET") or _dev_secret(data_dir),
            host=get("HOST") or "127.0.0.1",
            port=int(port_text),
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            auto_migrate=(auto in ("1", "true"))
            if auto is not None
            else database_url.startswith("sqlite:"),
        )


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise SettingsError("JACAMENO_DATABASE_URL: write sqlite:///relative or sqlite:////abs")
    elif scheme not in ("postgresql", "postgres"):
        raise SettingsError("JACAMENO_DATABASE_URL must be a sqlite:/// or postgresql:// URL")


def _dev_secret(data_dir: Path) -> str:
    """A per-installation signing key for development, kept in the data folder (never used in
    production, where JACAMENO_JWT_SECRET is required)."""
    path = data_dir / "jwt-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
        return secret
