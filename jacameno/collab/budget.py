"""Each socket's budget of large sync answers.

A sync step 1 of four bytes (an empty state vector) asks for the whole document: without a bound,
one socket repeating it made the server send 1.2 GB in 7 s of a 3.9 MB document. Providers ask
once per connection (and again on a resync or a re-authentication, when they mostly hold the
document already, so the answer is small); a socket gets `large_syncs` answers of at least
`large_sync_bytes` at once, and one more every `large_sync_window / large_syncs` seconds after
that (a token bucket). Smaller answers are free: they count toward the outbound bound."""

from __future__ import annotations

import time
from collections.abc import Callable

from jacameno.collab.errors import TooManyRequests
from jacameno.settings.collab import CollabConfig


class SyncBudget:
    __slots__ = ("_answers", "_clock", "_large_bytes", "_rate", "_tokens", "_updated", "_window")

    def __init__(
        self,
        answers: int,
        window: float,
        large_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._answers = answers
        self._window = window
        self._large_bytes = large_bytes
        self._rate = answers / window
        self._clock = clock
        self._tokens = float(answers)
        self._updated = clock()

    @classmethod
    def of(cls, config: CollabConfig) -> SyncBudget:
        return cls(config.large_syncs, config.large_sync_window, config.large_sync_bytes)

    def charge(self, answer_bytes: int) -> None:
        """Count a sync answer of `answer_bytes`; TooManyRequests if the budget is spent."""
        if answer_bytes < self._large_bytes:
            return
        now = self._clock()
        self._tokens = min(self._answers, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1:
            raise TooManyRequests(
                f"more than {self._answers} large sync answers in {self._window:g} s"
            )
        self._tokens -= 1
