"""The AI worker's timings and limits: the `ai` section of the settings, from `JACAMENO_AI_*`
variables (jacameno.settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jacameno.settings.section import positive_numbers


@dataclass(frozen=True, slots=True)
class AIConfig:
    # Seconds a claimed job stays a worker's without a renewal (renewed every third of it): a
    # worker that dies gives its job up this long after its last renewal.
    lease: float = 30.0
    max_attempts: int = 3  # claims of one job; a job whose workers died that often fails
    job_timeout: float = 600.0  # seconds one attempt may run; then it fails
    concurrency: int = 1  # jobs one worker process runs at once (one child process each)
    poll_interval: float = 1.0  # seconds between looks at the jobs table when it has none
    drain_timeout: float = 60.0  # on SIGTERM: seconds running jobs may take to finish

    @classmethod
    def read(cls, get: Callable[[str], str | None]) -> AIConfig:
        return cls(**positive_numbers(cls, "AI", get))
