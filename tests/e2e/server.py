"""`jacameno serve` as a real process on a free port, that a test can SIGKILL and start again on
the same port and database; and the REST calls that make users and projects on it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.services import free_port

PASSWORD = "correct horse battery staple"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str


class ServerProcess:
    """One `jacameno serve` at a time on `port`, logging to `log`.

    `database_url` must name a migrated database; `data_dir` and `jwt_secret` stay the same
    across restarts, so tokens issued before a kill are still valid after it. `extra_environment`
    is added last (say, `JACAMENO_REDIS_URL` for several nodes)."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        jwt_secret: str,
        log: Path,
        extra_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.jwt_secret = jwt_secret
        self.log = log
        self.extra_environment = dict(extra_environment or {})
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "JACAMENO_ENV": "test",
            "JACAMENO_DATABASE_URL": self.database_url,
            "JACAMENO_DATA_DIR": str(self.data_dir),
            "JACAMENO_JWT_SECRET": self.jwt_secret,
            "JACAMENO_AUTO_MIGRATE": "false",
            "JACAMENO_ARGON2_TIME_COST": "1",
            "JACAMENO_ARGON2_MEMORY_KIB": "1024",
            "JACAMENO_ARGON2_PARALLELISM": "1",
            "JACAMENO_AUTH_RATE_LIMIT": "10000",
            "JACAMENO_AUTH_ACCOUNT_RATE_LIMIT": "10000",
            "JACAMENO_API_RATE_LIMIT": "100000",
            "JACAMENO_LOG_LEVEL": "WARNING",
            **self.extra_environment,
        }

    async def start(self) -> None:
        """Start the server and wait until /healthz answers (uvicorn answers only once the
        app's lifespan has started)."""
        assert self.process is None or self.process.returncode is not None, "already running"
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jacameno",
                "serve",
                "--port",
                str(self.port),
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=1.0) as http:
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"the server exited at start:\n{self.log_tail()}")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not answer /healthz:\n{self.log_tail()}")
                await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, no goodbye to the sockets."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def restart(self) -> None:
        """Start again on the same port, database, data folder and JWT secret."""
        await self.start()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- REST ---------------------------------------------------------------------------------

    async def user(self, name: str) -> User:
        """Register and log in a new user."""
        email = f"{name}-{uuid.uuid4().hex[:12]}@example.com"
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": name.title()},
            )
            assert response.status_code == 201, response.text
            user_id = str(response.json()["user"]["id"])
            response = await http.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            return User(user_id, email, str(response.json()["access_token"]))

    async def project(self, owner: User, *members: tuple[User, str]) -> str:
        """A new project owned by `owner`, with `members` as (user, role)."""
        headers = {"Authorization": f"Bearer {owner.token}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=10, headers=headers) as http:
            response = await http.post("/api/projects", json={"title": "Song"})
            assert response.status_code == 201, response.text
            project_id = str(response.json()["id"])
            for member, role in members:
                response = await http.post(
                    f"/api/projects/{project_id}/members",
                    json={"email": member.email, "role": role},
                )
                assert response.status_code == 201, response.text
            return project_id


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
        extra_environment=extra_environment,
    )
    await process.start()
    try:
        yield process
    finally:
        await process.stop()
        print(f"--- server log ---\n{process.log_tail()}")
