"""How far behind the log each projection is, for `status()`, `/metrics` and `/readyz`.

Seconds behind is how stale the read model is: zero when it has applied the head, else now minus
the time the oldest event it has not applied was recorded (up to then the model was current; the
issue's "now minus recorded_at of the last applied event" would count an idle log before that
event as lag). The apply rate is over the last `window` seconds, from an injectable clock."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

# What this process's runner is doing with a projection: following the log as its one active
# runner, standing by while another process is, rebuilding it (a `<name>__rebuild` row), or not
# running it at all.
Role = Literal["following", "standby", "rebuilding", "stopped"]
State = Literal["following", "standby", "rebuilding", "stopped", "failing"]


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """One projection's progress. `events_per_second` is None where no runner follows the log
    in this process (the `jacameno projections status` command reads the checkpoints)."""

    name: str
    position: int
    head: int
    lag_positions: int
    seconds_behind: float
    events_per_second: float | None
    failures: int
    state: State
    last_error: str | None
    failing_since: datetime | None


class Throughput:
    """Events applied per second over the last `window` seconds."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._started = clock()
        self._applied: deque[tuple[float, int]] = deque()

    def applied(self, events: int) -> None:
        if events:
            self._applied.append((self._clock(), events))

    def rate(self) -> float:
        now = self._clock()
        while self._applied and self._applied[0][0] < now - self._window:
            self._applied.popleft()
        span = min(self._window, now - self._started)
        return sum(n for _, n in self._applied) / span if span > 0 else 0.0


def seconds_behind(oldest_pending: datetime | None, now: datetime | None = None) -> float:
    """Seconds since the oldest event not applied yet was recorded; 0 when none is pending."""
    if oldest_pending is None:
        return 0.0
    return max(((now or datetime.now(UTC)) - oldest_pending).total_seconds(), 0.0)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
