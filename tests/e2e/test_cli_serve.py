"""`jacameno serve` tells a newcomer plainly what is wrong before it starts: a port in use, a
Postgres database that is out of reach or not migrated; and `--port 0` picks a free port and
says which."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from harness.ports import free_port
from harness.waiting import wait_until

TIMEOUT = 20.0


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "JACAMENO_ENV": "test",
        "JACAMENO_DATA_DIR": str(tmp_path / "data"),
        "JACAMENO_LOG_LEVEL": "INFO",
        **extra,
    }


def serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `jacameno serve` expecting it to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "jacameno", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def assert_plain_refusal(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr


def test_a_port_in_use_is_told_at_once_without_a_traceback(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = serve(environment(tmp_path), "--port", str(port))
    assert_plain_refusal(result, f"port {port} on 127.0.0.1 is already in use", "--port")


def test_an_unmigrated_postgres_says_to_run_migrate(tmp_path: Path, empty_pg_url: str) -> None:
    env = environment(tmp_path, JACAMENO_DATABASE_URL=empty_pg_url)
    result = serve(env, "--port", str(free_port()))
    assert_plain_refusal(result, "not applied yet", "jacameno migrate", "JACAMENO_AUTO_MIGRATE")


def test_an_unreachable_postgres_is_named(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    result = serve(environment(tmp_path, JACAMENO_DATABASE_URL=url), "--port", str(free_port()))
    assert_plain_refusal(result, "cannot connect to 127.0.0.1")


def test_a_bad_port_is_refused_by_the_cli(tmp_path: Path) -> None:
    result = serve(environment(tmp_path), "--port", "70000")
    assert result.returncode == 2
    assert "not a port number" in result.stderr


async def test_port_zero_picks_a_free_port_and_says_which(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jacameno",
        "serve",
        "--port",
        "0",
        env=environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        url = await asyncio.wait_for(listening_url(process.stdout), TIMEOUT)
        port = int(url.rsplit(":", 1)[1])
        assert port not in (0, 8000)
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"{url}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(healthy, "/healthz answers on the port the server named", TIMEOUT)
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), TIMEOUT)


async def listening_url(stdout: asyncio.StreamReader) -> str:
    while line := await stdout.readline():
        record = json.loads(line)
        if record.get("action") == "serve.listening":
            return str(record["url"])
    raise AssertionError("the server exited without saying where it listens")
