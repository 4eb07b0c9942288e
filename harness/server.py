"""`jacameno serve` as a real process on a free port: started and waited ready, stopped (SIGTERM,
then SIGKILL), killed and started again on the same port, database, data folder and JWT secret
(so tokens issued before a kill are still valid after it), its log's tail at hand on failure; and
the REST calls that make users and projects on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from harness import accounts, settings
from harness.accounts import User
from harness.ports import free_port
from harness.waiting import TimedOut, wait_until

START_TIMEOUT = 20.0  # seconds


class ServerFailed(AssertionError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


def jacameno_command() -> list[str]:
    """The `jacameno` command of the running interpreter (the venv's)."""
    return [sys.executable, "-m", "jacameno"]


class ChildProcess:
    """What the harness's subprocesses share: `process` (None until started) logging to `log`."""

    process: asyncio.subprocess.Process | None
    log: Path

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; the exit status (None: never
        started)."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode

    def entries(self) -> list[dict[str, Any]]:
        """Each JSON object the process has logged so far, in order (other lines skipped)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    found.append(entry)
        return found

    def actions(self) -> list[str]:
        """The `action` of each JSON line the process has logged so far, in order."""
        return [str(entry["action"]) for entry in self.entries() if "action" in entry]

    async def logged(self, action: str, timeout: float = 10.0) -> None:
        """Wait until the process has logged `action`; AssertionError if it exits first."""

        def seen() -> bool:
            assert self.process is not None, "not started"
            if self.process.returncode is not None:
                raise AssertionError(
                    f"the process exited before it logged {action}:\n{self.log_tail()}"
                )
            return action in self.actions()

        await wait_until(seen, f"the process logged {action}", timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass(eq=False)
class ServerProcess(ChildProcess):
    """One `jacameno serve` at a time on `port`, logging to `log`.

    `database_url` must name a migrated database (or ask for `JACAMENO_AUTO_MIGRATE` in
    `extra_environment`, which is added last: say, `JACAMENO_REDIS_URL` for several nodes).
    Passwords are hashed at argon2's cheapest unless `cheap_passwords` is False. Started means
    `ready_path` answers 200: /healthz once the app's lifespan has started, /readyz once its
    database answers too. Also an async context manager: started on entry, stopped on exit."""

    database_url: str
    data_dir: Path
    jwt_secret: str
    log: Path
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    _: KW_ONLY
    cheap_passwords: bool = True
    ready_path: str = "/healthz"
    start_timeout: float = START_TIMEOUT
    port: int = field(init=False, default_factory=free_port)
    process: asyncio.subprocess.Process | None = field(init=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def environment(self) -> dict[str, str]:
        """The whole environment the server runs with (this process's, then ours)."""
        ours = settings.environment(
            self.database_url,
            self.data_dir,
            jwt_secret=self.jwt_secret,
            cheap_passwords=self.cheap_passwords,
            overrides={"JACAMENO_LOG_LEVEL": "WARNING", **self.extra_environment},
        )
        return {**os.environ, **ours}

    async def start(self) -> None:
        """Start the server and wait until it is ready; ServerFailed if it exits first or is
        not ready within `start_timeout` seconds."""
        assert self.process is None or self.process.returncode is not None, "already running"
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *jacameno_command(),
                "serve",
                "--port",
                str(self.port),
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient(timeout=2.0) as http:
            try:
                await wait_until(
                    lambda: self._ready(http), "it is ready", self.start_timeout, interval=0.02
                )
            except TimedOut:
                raise ServerFailed(
                    f"the server did not answer {self.ready_path}:\n{self.log_tail()}"
                ) from None

    async def _ready(self, http: httpx.AsyncClient) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise ServerFailed(f"the server exited at start:\n{self.log_tail()}")
        try:
            return (await http.get(f"{self.url}{self.ready_path}")).status_code == 200
        except httpx.HTTPError:
            return False

    async def restart(self) -> None:
        """Start again on the same port, database, data folder and JWT secret."""
        await self.start()

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- REST ---------------------------------------------------------------------------------

    def http(self, timeout: float = 10.0) -> httpx.AsyncClient:
        """A client of this server's REST API."""
        return httpx.AsyncClient(base_url=self.url, timeout=timeout)

    async def user(self, name: str) -> User:
        """Register and log in a new user."""
        async with self.http() as http:
            return await accounts.new_user(http, name)

    async def project(self, owner: User, *members: tuple[User, str]) -> str:
        """A new project owned by `owner`, with `members` as (user, role)."""
        async with self.http() as http:
            return await accounts.new_project(http, owner, *members)


@contextlib.asynccontextmanager
async def serving(
    database_url: str, tmp_path: Path, extra_environment: Mapping[str, str] | None = None
) -> AsyncIterator[ServerProcess]:
    """A started `jacameno serve` on `database_url` with its data and log under `tmp_path`;
    stopped afterwards, its log's tail printed (pytest shows it when the test fails)."""
    process = ServerProcess(
        database_url,
        data_dir=tmp_path / "data",
        jwt_secret="e2e-" + uuid.uuid4().hex,
        log=tmp_path / "server.log",
        extra_environment=extra_environment or {},
    )
    try:
        async with process:
            yield process
    finally:
        print(f"--- server log ---\n{process.log_tail()}")
