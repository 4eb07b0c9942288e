"""Whether a backing service answers, remembered between calls, so that the REST API can fall
back at once instead of waiting on a service that is down at every request.

After a failure the service is not tried again for `retry_seconds`; the first success closes the
circuit. Each change is logged once (a warning when the service goes, info when it comes back)
and shown in the `jacameno_redis_up` gauge (docs/operations.md, "Redis outage")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Circuit:
    def __init__(
        self,
        name: str,
        retry_seconds: float,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._retry_seconds = retry_seconds
        self._on_change = on_change
        self._clock = clock
        self._up = True
        self._retry_at = 0.0
        if on_change is not None:
            on_change(True)

    @property
    def up(self) -> bool:
        """Whether the last call to the service succeeded."""
        return self._up

    def should_try(self) -> bool:
        """Whether a call is worth making: the service is up, or its retry time has come."""
        return self._up or self._clock() >= self._retry_at

    def succeeded(self) -> None:
        if not self._up:
            self._up = True
            logger.info(
                "backing service answers again",
                extra={"action": "circuit.closed", "service": self.name},
            )
            if self._on_change is not None:
                self._on_change(True)

    def failed(self, error: BaseException) -> None:
        self._retry_at = self._clock() + self._retry_seconds
        if self._up:
            self._up = False
            logger.warning(
                "backing service unavailable; degrading",
                extra={
                    "action": "circuit.opened",
                    "service": self.name,
                    "error": type(error).__name__,
                    "retry_seconds": self._retry_seconds,
                },
            )
            if self._on_change is not None:
                self._on_change(False)
