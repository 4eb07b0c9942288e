"""The Postgres and Redis that tests run against, found or started.

Each service is resolved in this order: an explicit URL from the environment, the standard local
service if it answers, a throwaway server started from the machine's binaries (stopped and deleted
on exit), else `ServiceUnavailable` naming what to install. Tests never skip a missing service.
`JACAMENO_TEST_SERVICES=throwaway` forces the throwaway servers, whatever else is available.

`postgres()` and `redis()` are blocking context managers; call them outside an event loop (from a
sync fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from harness.ports import free_port, port_open
from harness.waiting import TimedOut, wait_blocking

DATABASE_URL_ENV = "JACAMENO_TEST_DATABASE_URL"
REDIS_URL_ENV = "JACAMENO_TEST_REDIS_URL"
MODE_ENV = "JACAMENO_TEST_SERVICES"

STANDARD_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STANDARD_REDIS_URL = "redis://127.0.0.1:6379/0"

POSTGRES_ROOTS = (Path("/usr/lib/postgresql"),)
POSTGRES_TOOLS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT = 30  # seconds
INITDB_OPTIONS = ("-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
REDIS_OPTIONS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


class ServiceUnavailable(RuntimeError):
    """No usable Postgres or Redis for the tests; the message says what to install or set."""


def forced_throwaway(environ: dict[str, str] | None = None) -> bool:
    """Whether `JACAMENO_TEST_SERVICES` asks for throwaway servers; unknown values are errors."""
    mode = (os.environ if environ is None else environ).get(MODE_ENV, "").strip().lower()
    if mode not in ("", "auto", "throwaway"):
        raise ServiceUnavailable(f"{MODE_ENV}={mode!r}: expected 'auto' or 'throwaway'")
    return mode == "throwaway"


def postgres() -> contextlib.AbstractContextManager[str]:
    """A DSN for an admin connection to database `postgres`, valid inside the block."""
    return _resolved(
        DATABASE_URL_ENV,
        STANDARD_POSTGRES_URL,
        lambda: postgres_answers(STANDARD_POSTGRES_URL),
        throwaway_postgres,
    )


def redis() -> contextlib.AbstractContextManager[str]:
    """A Redis URL, valid inside the block."""
    return _resolved(
        REDIS_URL_ENV,
        STANDARD_REDIS_URL,
        lambda: redis_answers("127.0.0.1", 6379),
        throwaway_redis,
    )


@contextlib.contextmanager
def _resolved(
    variable: str,
    standard: str,
    standard_answers: Callable[[], bool],
    throwaway: Callable[[], contextlib.AbstractContextManager[str]],
) -> Iterator[str]:
    """The URL in `variable`, else `standard` if it answers, else a throwaway server's (the
    last only, when the throwaway mode is forced)."""
    if not forced_throwaway():
        if url := os.environ.get(variable):
            yield url
            return
        if standard_answers():
            yield standard
            return
    with throwaway() as url:
        yield url


# Probes


def postgres_answers(url: str, timeout: float = 3.0) -> bool:
    """Whether `url` accepts a connection and answers a query (any failure means no)."""
    parts = urlsplit(url)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        return False

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        try:
            return bool(await conn.fetchval("SELECT 1", timeout=timeout) == 1)
        finally:
            await conn.close()

    # A thread of its own, so the probe works whether or not the caller runs an event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result()


def redis_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis at host:port answers PING without authentication."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# Throwaway Postgres


def find_postgres_bin(
    path: str | None = None, roots: Sequence[Path] = POSTGRES_ROOTS
) -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: from PATH first, else the newest
    `<root>/<version>/bin`."""
    candidates: list[Path] = []
    if initdb := shutil.which("initdb", path=path):
        candidates.append(Path(initdb).resolve().parent)
    for root in roots:
        versions = [d for d in root.glob("*/bin") if d.is_dir()]
        versions.sort(key=lambda d: _version_key(d.parent.name), reverse=True)
        candidates.extend(versions)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in POSTGRES_TOOLS):
            return directory
    return None


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def unprivileged_user() -> str:
    """The account to run Postgres as when we are root: `postgres` if it exists, else `nobody`."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServiceUnavailable("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def as_user(user: str | None, argv: list[str]) -> list[str]:
    """`argv` run as `user` (None: as ourselves), via runuser or setpriv."""
    if user is None:
        return argv
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", user, "--", *argv]
    if setpriv := shutil.which("setpriv"):
        entry = pwd.getpwnam(user)
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
        return [setpriv, *ids, *argv]
    raise ServiceUnavailable("running as root, and neither runuser nor setpriv is available")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a trust-auth Postgres in a temporary directory on a free port; stop and delete it
    when the block ends."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise ServiceUnavailable(
            "No Postgres for the tests: JACAMENO_TEST_DATABASE_URL is not set, nothing usable "
            "answers at 127.0.0.1:5432 as user postgres, and no initdb/pg_ctl/postgres was found "
            "on PATH or under /usr/lib/postgresql/*/bin. Install PostgreSQL "
            "(Debian/Ubuntu: `apt-get install postgresql`) or set "
            "JACAMENO_TEST_DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/postgres."
        )
    # initdb refuses to run as root: then the server belongs to an unprivileged user.
    user = unprivileged_user() if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="jacameno-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        data = str(base / "data")
        initdb = [str(bindir / "initdb"), "-D", data, *INITDB_OPTIONS]
        result = _run(as_user(user, initdb), cwd=base)
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed ({' '.join(initdb)}):\n{_output(result)}")
        pg_ctl = [str(bindir / "pg_ctl"), "-D", data]
        port = _start_postgres(user, pg_ctl, base)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            if _run(as_user(user, [*pg_ctl, "stop", "-w", "-m", "fast"]), cwd=base).returncode:
                _run(as_user(user, [*pg_ctl, "stop", "-w", "-m", "immediate"]), cwd=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start_postgres(user: str | None, pg_ctl: list[str], base: Path) -> int:
    log = base / "postgres.log"
    # The port is free when picked but may be taken before the server binds it: try again then.
    for _ in range(3):
        port = free_port()
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [*pg_ctl, "start", "-w", "-t", str(START_TIMEOUT), "-l", str(log), "-o", options]
        result = _run(as_user(user, start), cwd=base)
        if result.returncode == 0:
            return port
        if "already in use" not in _tail(log):
            break
    raise ServiceUnavailable(
        f"throwaway Postgres did not start ({' '.join(start)}):\n{_output(result)}{_tail(log)}"
    )


# Throwaway Redis


class RedisServer:
    """A non-persistent redis-server of our own on one port, that a fault test can stop (SIGTERM:
    every key is gone) and start again, empty, on the same port."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(
                "No Redis for the tests: JACAMENO_TEST_REDIS_URL is not set, nothing answers PING"
                " at 127.0.0.1:6379, and no redis-server was found on PATH. Install Redis "
                "(Debian/Ubuntu: `apt-get install redis-server`) or set "
                "JACAMENO_TEST_REDIS_URL=redis://HOST:PORT/0."
            )
        self.port = port or free_port()
        self._base = base
        self._argv = [binary, "--port", str(self.port), "--dir", str(base), *REDIS_OPTIONS]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it answers PING."""
        log = self._base / "redis.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                self._argv, stdout=out, stderr=subprocess.STDOUT, cwd=self._base
            )
        process = self._process

        def answers() -> bool:
            if process.poll() is not None:
                raise TimedOut("redis-server exited")
            return redis_answers("127.0.0.1", self.port)

        try:
            wait_blocking(answers, "Redis answers PING", START_TIMEOUT)
        except TimedOut as exc:
            raise ServiceUnavailable(
                f"throwaway Redis did not start ({' '.join(self._argv)}): {exc}\n{_tail(log)}"
            ) from None

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self.resume()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """Start a non-persistent redis-server on a free port; stop it when the block ends."""
    base = Path(tempfile.mkdtemp(prefix="jacameno-redis-"))
    try:
        server = RedisServer(base)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str], *, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, check=False)


def _output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
