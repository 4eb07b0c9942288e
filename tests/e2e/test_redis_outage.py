"""A Redis outage degrades the REST API instead of taking it down (issue 8, finding 9): with a
Redis of our own stopped, a real server keeps logging people in, refreshing their tokens and
serving projects, and /readyz says "degraded" (200); after Redis comes back empty, the refresh
tokens issued before still work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.accounts import login
from harness.server import ServerProcess
from harness.waiting import wait_until
from tests.services import RedisServer

TIMEOUT = 10.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until `check` holds, polling; fails after TIMEOUT."""
    started = time.monotonic()
    await wait_until(check, what, TIMEOUT, interval=0.05)
    return time.monotonic() - started


async def refresh(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await http.post("/api/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def projects_work(http: httpx.AsyncClient, access_token: str) -> None:
    headers = {"Authorization": f"Bearer {access_token}"}
    created = await http.post("/api/projects", json={"title": "Outage"}, headers=headers)
    assert created.status_code == 201, created.text
    listed = await http.get("/api/projects", headers=headers)
    assert listed.status_code == 200, listed.text
    assert created.json()["id"] in [p["id"] for p in listed.json()["projects"]]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def serving(database_url: str, tmp_path: Path, redis_server: RedisServer) -> ServerProcess:
    return ServerProcess(
        database_url,
        data_dir=tmp_path / "data",
        jwt_secret="e2e-" + uuid.uuid4().hex,
        log=tmp_path / "server.log",
        extra_environment={"JACAMENO_REDIS_URL": redis_server.url},
    )


@pytest.mark.slow
async def test_the_api_keeps_working_through_a_redis_outage_and_an_empty_restart(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    server = serving(database_url, tmp_path, redis_server)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "ok")
            user = await server.user("outage")
            during = await login(http, user.email)  # refreshed during the outage
            after = await login(http, user.email)  # first refreshed after the restart

            redis_server.stop()
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"]["status"] == "ok"
            assert body["checks"]["redis"]["status"] == "unavailable"
            started = time.monotonic()
            fresh = await login(http, user.email)
            during = await refresh(http, during["refresh_token"])
            await projects_work(http, fresh["access_token"])
            await projects_work(http, during["access_token"])
            print(
                f"outage: login, refresh and 4 project calls in {time.monotonic() - started:.3f} s"
            )
            metrics = (await http.get("/metrics")).text
            assert metric(metrics, "jacameno_redis_up") == 0
            assert metric(metrics, "jacameno_ratelimit_fallbacks_total") >= 6

            redis_server.start()  # empty: it keeps nothing on disk

            async def ready_again() -> bool:
                return bool((await http.get("/readyz")).json()["status"] == "ok")

            healed = await eventually(ready_again, "/readyz ok after Redis restarts")
            print(f"/readyz ok {healed:.3f} s after Redis answered again")
            for tokens in (during, after, fresh):
                await projects_work(
                    http, (await refresh(http, tokens["refresh_token"]))["access_token"]
                )

            async def redis_up() -> bool:
                await http.get(
                    "/api/projects", headers={"Authorization": f"Bearer {fresh['access_token']}"}
                )
                return metric((await http.get("/metrics")).text, "jacameno_redis_up") == 1

            await eventually(redis_up, "the rate limits use Redis again")
    finally:
        await server.stop()
        print(f"--- server log ---\n{server.log_tail()}")


@pytest.mark.slow
async def test_a_hung_redis_costs_the_api_at_most_its_timeout(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """Redis stopped with SIGSTOP answers nothing: calls wait for JACAMENO_REDIS_TIMEOUT_MS
    (500 ms, one retry), and then not again until JACAMENO_REDIS_RETRY_SECONDS (2 s) passed."""
    server = serving(database_url, tmp_path, redis_server)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            user = await server.user("hung")
            redis_server.pause()
            started = time.monotonic()
            ready = await http.get("/readyz")
            waited = time.monotonic() - started
            assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
            assert ready.json()["checks"]["redis"]["error"] == "TimeoutError"
            assert waited < 2.0, waited
            started = time.monotonic()
            for _ in range(5):
                await login(http, user.email)
            logins = time.monotonic() - started
            # The readiness probe opened the circuit: no login waited on Redis.
            assert logins < 1.0, logins
            print(f"hung Redis: /readyz in {waited:.3f} s, 5 logins in {logins:.3f} s")
            redis_server.resume()

            async def ready_again() -> bool:
                return bool((await http.get("/readyz")).json()["status"] == "ok")

            healed = await eventually(ready_again, "/readyz ok after SIGCONT")
            print(f"/readyz ok {healed:.3f} s after SIGCONT")
    finally:
        await server.stop()
        print(f"--- server log ---\n{server.log_tail()}")
