"""What a store has written since it opened, as plain counters: for benchmarks and metrics, so
that nobody reads a backend's private parts to learn how its group commit behaves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters since the store opened; they only grow.

    - `appends`: appends answered with success (an idempotent replay included);
    - `events`: the events of those appends (a replay's too, though not written again);
    - `commits`: transactions that wrote them (with group commit, one per batch that holds at
      least one of them; the memory store commits each append on its own);
    - `paced`: commits that waited for their pace (`eventstore.Pacing`; 0 without pacing)."""

    appends: int = 0
    events: int = 0
    commits: int = 0
    paced: int = 0
