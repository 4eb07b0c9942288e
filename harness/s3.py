"""An S3-compatible server for tests and benchmarks: moto's (`moto[server]`, a dev dependency)
started as a process of its own on a free port, its buckets made by plain HTTP (moto's server
takes unsigned requests), and stopped afterwards. Its data lives in that process's memory."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.ports import free_port, port_open
from harness.waiting import wait_blocking

START_TIMEOUT = 30.0  # seconds: moto imports a lot
REGION = "us-east-1"
# moto accepts any credentials; botocore wants some.
ACCESS_KEY = ("testing", "testing")


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint_url: str
    region: str = REGION

    def create_bucket(self, name: str | None = None) -> str:
        """A new, empty bucket; its name."""
        bucket = name or f"b-{uuid.uuid4().hex[:20]}"
        answer = httpx.put(f"{self.endpoint_url}/{bucket}", timeout=10.0)
        answer.raise_for_status()
        return bucket

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point botocore at this server's credentials."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY[0],
            "AWS_SECRET_ACCESS_KEY": ACCESS_KEY[1],
            "AWS_DEFAULT_REGION": self.region,
        }


@contextlib.contextmanager
def s3_server(log: Path | None = None) -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1, ready inside the block (a blocking context
    manager: call it outside an event loop)."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"moto's server exited with {process.returncode}")
                return port_open("127.0.0.1", port)

            wait_blocking(ready, "moto's S3 server answers", START_TIMEOUT)
            yield S3Server(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
