"""Settings, read once from `JACAMENO_*` environment variables into one typed object: the server's
own here, the limits of live collaboration as its `collab` section (jacameno.settings.collab).
Nothing else reads the environment; the composition root (jacameno.bootstrap) hands each part
what it needs.

With nothing set, the server runs on the embedded default: SQLite in the data folder, a single
node without a bus, files on local disk (the data folder's `blobs/`). With
`JACAMENO_ENV=production`, every setting that would otherwise fall back to that default must be
given: a missing one is an error at start."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from jacameno.settings.ai import AIConfig
from jacameno.settings.collab import CollabConfig
from jacameno.settings.errors import SettingsError
from jacameno.settings.storage import StorageConfig

__all__ = [
    "HEADER_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "CollabConfig",
    "Environment",
    "ProjectionsMode",
    "Settings",
    "SettingsError",
    "StorageConfig",
    "signing_key",
]

Environment = Literal["development", "test", "production"]
_ENVIRONMENTS = ("development", "test", "production")
# Whether a serving node folds the log into the read models itself (`run`) or leaves that to a
# `jacameno projections run` process and only reads them (`standby`): docs/operations.md,
# "A projection process".
ProjectionsMode = Literal["run", "standby"]
_PROJECTIONS_MODES = ("run", "standby")
_REQUIRED_IN_PRODUCTION = ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "STORAGE_URL")
# How long a projection following a live log rests between short batches, by default
# (JACAMENO_PROJECTIONS_LULL_MS). At 50 clients / 10 rooms / 5 edits/s (load.bench_collab, two
# alternate runs each, docs/benchmarks.md) 250 ms against 50 ms took server CPU per 1,000 edits
# from 1,163-1,271 to 977-981 ms on Postgres (the ack's p99 7.6 -> 8.4-9.1 ms while the disk's
# commit p99 went 3.4-3.6 -> 4.4-4.7 ms in the same runs); on SQLite from 1,418-1,498 to
# 1,033-1,249 ms, but the ack's p99 rose from 9.3-10.9 to 12.7-15.7 ms (suspected, not
# measured: the read models' larger transactions hold the file's one write lock longer, and the
# log's commits wait for it), so SQLite keeps the shorter rest.
LULL_MS = {"postgres": 250, "sqlite": 50}
# The HTTP layer's bounds (jacameno.server, docs/security.md).
MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT_SECONDS = 10
MAX_CONNECTIONS = 4096


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment
    data_dir: Path
    database_url: str
    redis_url: str | None
    jwt_secret_setting: str | None
    host: str
    port: int
    log_level: str
    auto_migrate: bool
    cors_origins: tuple[str, ...] = ()
    access_token_seconds: int = 900
    refresh_token_seconds: int = 7 * 24 * 3600
    # Login and register attempts per minute from one client address, and login attempts per
    # minute at one account from one address (docs/security.md, "Accounts and sessions").
    auth_rate_limit: int = 10
    auth_account_rate_limit: int = 5
    # Peers whose X-Forwarded-For is believed (IPs and CIDRs); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # How long the token just rotated away still yields the session's current pair (two tabs).
    refresh_grace_seconds: int = 10
    # Redis calls of the REST API give up after this long; after a failure they are not tried
    # again for `redis_retry_seconds` (the rate limits count in process meanwhile).
    redis_timeout_ms: int = 500
    redis_retry_seconds: int = 2
    api_rate_limit: int = 600  # API requests per minute, per user
    max_body_bytes: int = 1024 * 1024
    # argon2id cost; the defaults are RFC 9106's second recommended option (64 MiB, 3 passes).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 4
    # Group-commit pacing (eventstore.groupcommit.Pacing): above this many events per second,
    # commits start at least this many milliseconds apart; 0 turns pacing off.
    commit_pace_ms: int = 10
    commit_pace_above: int = 1000
    snapshots_per_stream: int = 3  # the event store keeps this many snapshots per stream
    # ... and the highest of every span of this many versions, for time travel (0: none)
    snapshot_spacing: int = 1000
    # A blame that would replay more than this many updates where the project has no blame
    # checkpoint beyond its version (its first) is made in the background, answered 202 until
    # ready (docs/history.md, "Blame"); 0: every blame is waited for.
    blame_background_above: int = 20_000
    # A request's line and headers: at most this many bytes (431), arrived within this many
    # seconds of its first byte (408); connections this node holds open (more: 503).
    max_header_bytes: int = MAX_HEADER_BYTES
    header_timeout_seconds: int = HEADER_TIMEOUT_SECONDS
    max_connections: int = MAX_CONNECTIONS
    # `/readyz` answers 503 while a projection is more seconds behind the log than this; unset,
    # the lag does not affect readiness (docs/operations.md, "Projections").
    ready_max_projection_lag_seconds: int | None = None
    # Accounts (by email, lower case) that may use the admin API (`/api/admin/...`); none by
    # default.
    admin_emails: frozenset[str] = frozenset()
    projections: ProjectionsMode = "run"  # JACAMENO_PROJECTIONS
    # Following a live log, a projection reads it at most every this many milliseconds unless an
    # API caller waits for its own write (docs/eventstore.md, "Projections"): the read models
    # trail the log by up to this much, and a busy studio's edits are folded a few hundred to a
    # transaction rather than a few dozen. The default is LULL_MS of the database's kind.
    projections_lull_ms: int = 50
    # On SQLite, a read runs on the event loop for at most this many microseconds before it is
    # stopped and made in the reader thread (dbdrivers.sqlite.LoopFirstReader); 0: every read in
    # the thread (docs/operations.md).
    sqlite_loop_read_us: int = 1000
    collab: CollabConfig = field(default_factory=CollabConfig)  # JACAMENO_COLLAB_*
    # JACAMENO_STORAGE_*, JACAMENO_S3_*, JACAMENO_MAX_UPLOAD_BYTES (jacameno.settings.storage)
    storage: StorageConfig = field(default_factory=lambda: StorageConfig("file://.jacameno/blobs"))
    ai: AIConfig = field(default_factory=AIConfig)  # JACAMENO_AI_*: the worker's

    @property
    def database_kind(self) -> Literal["sqlite", "postgres"]:
        return _kind(self.database_url)

    @property
    def sqlite_loop_reads(self) -> float:
        """`sqlite_loop_read_us` in seconds."""
        return self.sqlite_loop_read_us / 1_000_000

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
        if not port_text.isdigit() or int(port_text) > 65535:
            raise SettingsError(
                f"JACAMENO_PORT must be a port number (0 picks a free one), not {port_text!r}"
            )
        jwt_secret = get("JWT_SECRET")
        if env == "production" and jwt_secret is not None and len(jwt_secret) < 32:
            raise SettingsError("JACAMENO_JWT_SECRET must be at least 32 characters")
        projections = get("PROJECTIONS") or "run"
        if projections not in _PROJECTIONS_MODES:
            raise SettingsError(f"JACAMENO_PROJECTIONS must be run or standby, not {projections!r}")
        if projections == "standby" and database_url.startswith("sqlite:"):
            raise SettingsError(
                "JACAMENO_PROJECTIONS=standby needs Postgres: on SQLite the server runs the"
                ' projections itself (one process; docs/operations.md, "A projection process")'
            )
        auto = get("AUTO_MIGRATE")
        if auto is not None and auto not in ("0", "1", "true", "false"):
            raise SettingsError("JACAMENO_AUTO_MIGRATE must be true or false")
        return cls(
            env=env,  # type: ignore[arg-type]
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            jwt_secret_setting=jwt_secret,
            host=get("HOST") or "127.0.0.1",
            port=int(port_text),
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            auto_migrate=(auto in ("1", "true"))
            if auto is not None
            else database_url.startswith("sqlite:"),
            cors_origins=tuple(
                o.strip() for o in (get("CORS_ORIGINS") or "").split(",") if o.strip()
            ),
            access_token_seconds=_int(get, "ACCESS_TOKEN_SECONDS", 900, 30),
            refresh_token_seconds=_int(get, "REFRESH_TOKEN_SECONDS", 7 * 24 * 3600, 60),
            auth_rate_limit=_int(get, "AUTH_RATE_LIMIT", 10, 1),
            auth_account_rate_limit=_int(get, "AUTH_ACCOUNT_RATE_LIMIT", 5, 1),
            trusted_proxies=_networks(get("TRUSTED_PROXIES")),
            refresh_grace_seconds=_int(get, "REFRESH_GRACE_SECONDS", 10, 0),
            redis_timeout_ms=_int(get, "REDIS_TIMEOUT_MS", 500, 10),
            redis_retry_seconds=_int(get, "REDIS_RETRY_SECONDS", 2, 1),
            api_rate_limit=_int(get, "API_RATE_LIMIT", 600, 1),
            max_body_bytes=_int(get, "MAX_BODY_BYTES", 1024 * 1024, 1024),
            argon2_time_cost=_int(get, "ARGON2_TIME_COST", 3, 1),
            argon2_memory_kib=_int(get, "ARGON2_MEMORY_KIB", 64 * 1024, 8),
            argon2_parallelism=_int(get, "ARGON2_PARALLELISM", 4, 1),
            commit_pace_ms=_int(get, "COMMIT_PACE_MS", 10, 0),
            commit_pace_above=_int(get, "COMMIT_PACE_ABOVE", 1000, 0),
            snapshots_per_stream=_int(get, "SNAPSHOTS_PER_STREAM", 3, 1),
            snapshot_spacing=_int(get, "SNAPSHOT_SPACING", 1000, 0),
            blame_background_above=_int(get, "BLAME_BACKGROUND_ABOVE", 20_000, 0),
            max_header_bytes=_int(get, "MAX_HEADER_BYTES", MAX_HEADER_BYTES, 1024),
            header_timeout_seconds=_int(get, "HEADER_TIMEOUT_SECONDS", HEADER_TIMEOUT_SECONDS, 1),
            max_connections=_int(get, "MAX_CONNECTIONS", MAX_CONNECTIONS, 1),
            ready_max_projection_lag_seconds=(
                None
                if get("READY_MAX_PROJECTION_LAG_SECONDS") is None
                else _int(get, "READY_MAX_PROJECTION_LAG_SECONDS", 0, 0)
            ),
            admin_emails=frozenset(
                e.strip().lower() for e in (get("ADMIN_EMAILS") or "").split(",") if e.strip()
            ),
            projections=projections,  # type: ignore[arg-type]
            projections_lull_ms=_int(get, "PROJECTIONS_LULL_MS", LULL_MS[_kind(database_url)], 0),
            sqlite_loop_read_us=_int(get, "SQLITE_LOOP_READ_US", 1000, 0),
            collab=CollabConfig.read(get),
            storage=StorageConfig.read(get, data_dir),
            ai=AIConfig.read(get),
        )


def _kind(database_url: str) -> Literal["sqlite", "postgres"]:
    return "sqlite" if database_url.startswith("sqlite:") else "postgres"


def _int(get: Callable[[str], str | None], name: str, default: int, minimum: int) -> int:
    text = get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise SettingsError(f"JACAMENO_{name} must be an integer >= {minimum}, not {text!r}")
    return int(text)


def _networks(text: str | None) -> tuple[str, ...]:
    """JACAMENO_TRUSTED_PROXIES: comma-separated IP addresses and CIDR networks, normalized
    (`10.1.2.3/8` becomes `10.0.0.0/8`)."""
    entries: list[str] = []
    for part in (text or "").split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            if "/" in entry:
                entries.append(str(ipaddress.ip_network(entry, strict=False)))
            else:
                entries.append(str(ipaddress.ip_address(entry)))
        except ValueError as exc:
            raise SettingsError(
                f"JACAMENO_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from exc
    return tuple(entries)


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise SettingsError("JACAMENO_DATABASE_URL: write sqlite:///relative or sqlite:////abs")
    elif scheme not in ("postgresql", "postgres"):
        raise SettingsError("JACAMENO_DATABASE_URL must be a sqlite:/// or postgresql:// URL")


def signing_key(settings: Settings) -> str:
    """The tokens' signing key: JACAMENO_JWT_SECRET, or outside production a per-installation key
    kept in the data folder, made the first time the composition root asks (so commands that
    sign nothing write nothing; the settings object itself never touches the disk)."""
    if settings.jwt_secret_setting:
        return settings.jwt_secret_setting
    data_dir = settings.data_dir
    path = data_dir / "jwt-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
        return secret
