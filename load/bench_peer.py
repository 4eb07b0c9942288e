"""`python -m load.bench_eventstore --peer`: our store against eventsourcing's application
recorder (load/peer.py) in the same run, on the same database and the same events.

Each round measures the raw ceilings, then every figure twice, ours and the peer's one right
after the other, the order swapped every round so that neither always runs on a warmer (or a
fuller) database. A full garbage collection runs before each measurement, so that neither side
pays for the other's garbage. The table gives, per figure, the median of the rounds for both
stores with their spread (lowest to highest), the ratio ours / peer of the medians with the
lowest and highest ratio of a single round, and the ceiling's median."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from time import process_time
from typing import Any

from load import peer as peers
from load import scenarios
from load.ceilings import PostgresCeiling, SQLiteCeiling
from load.stats import Measurement
from load.workload import Workload

Run = Callable[[], Awaitable[Measurement]]


@dataclass(slots=True)
class Compared:
    """One figure, measured for both stores in every round."""

    key: str
    label: str
    unit: str
    ceiling: str | None
    ours: list[Measurement] = field(default_factory=list)
    peer: list[Measurement] = field(default_factory=list)

    def medians(self) -> tuple[float, float]:
        return _median(self.ours), _median(self.peer)

    def ratios(self) -> list[float]:
        return [
            o.rate / p.rate if p.rate else 0.0 for o, p in zip(self.ours, self.peer, strict=True)
        ]

    def to_json(self, ceilings: dict[str, list[Measurement]]) -> dict[str, Any]:
        ours, peer = self.medians()
        result: dict[str, Any] = {
            "label": self.label,
            "unit": self.unit,
            "ours_median": round(ours, 1),
            "peer_median": round(peer, 1),
            "ratio": round(ours / peer, 3) if peer else None,
            "ours_rounds": [m.to_json() for m in self.ours],
            "peer_rounds": [m.to_json() for m in self.peer],
            "round_ratios": [round(r, 3) for r in self.ratios()],
            "cpu_us_per_event": {"ours": _cpu(self.ours), "peer": _cpu(self.peer)},
        }
        if self.ceiling is not None:
            result["ceiling"] = self.ceiling
            result["ceiling_median"] = round(_median(ceilings[self.ceiling]), 1)
        return result


def _median(measurements: list[Measurement]) -> float:
    return statistics.median(m.rate for m in measurements)


def _cpu(measurements: list[Measurement]) -> float | None:
    spent = [m.extra["cpu_us_per_item"] for m in measurements if "cpu_us_per_item" in m.extra]
    return statistics.median(spent) if spent else None


def _cpu_text(figure: Compared) -> str:
    ours, peer = _cpu(figure.ours), _cpu(figure.peer)
    return "-" if ours is None or peer is None else f"{ours:.1f} / {peer:.1f}"


def _spread(measurements: list[Measurement]) -> str:
    rates = [m.rate for m in measurements]
    return f"{min(rates) / 1000:,.0f}k-{max(rates) / 1000:,.0f}k"


async def _timed(run: Run, *, cpu_per_item: bool) -> Measurement:
    """Run one measurement after a full collection; note the CPU time this process spent on
    each item (all its threads: the event loop's and the database driver's), which a busy
    machine disturbs far less than the rate, since time spent waiting for a core is not in it."""
    gc.collect()
    cpu = process_time()
    measurement = await run()
    spent = process_time() - cpu
    if measurement.count and cpu_per_item:
        measurement.extra["cpu_us_per_item"] = spent / measurement.count * 1e6
    return measurement


async def compare(
    name: str,
    store: Any,
    peer: peers.Peer,
    ceiling: PostgresCeiling | SQLiteCeiling,
    workload: Workload,
    *,
    events: int,
    max_seconds: float,
    appenders: int,
    appender_seconds: float,
    warmup_seconds: float,
    subscribe_batch: int,
    rounds: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every figure of one backend for both stores, `rounds` times; prints the table."""
    ceilings: dict[str, list[Measurement]] = {"batched_insert": [], "single_commit": []}
    figures = [
        Compared("append_batch_100", "1 writer, appends of 100", "events/s", "batched_insert"),
        Compared("append_batch_1000", "1 writer, appends of 1,000", "events/s", "batched_insert"),
        Compared("appenders", f"{appenders} writers, 1 event each", "events/s", "single_commit"),
        Compared(
            "subscriber", f"reader of the whole log, pages of {subscribe_batch:,}", "events/s", None
        ),
    ]
    for number in range(rounds):
        say(f"{name} round {number + 1}/{rounds}: ceilings")
        ceilings["batched_insert"].append(await ceiling.batched_inserts(events, 1000, max_seconds))
        ceilings["single_commit"].append(await ceiling.single_commits(min(3.0, max_seconds)))
        runs: list[tuple[Run, Run]] = [
            (
                partial(
                    scenarios.batched_appends,
                    store,
                    workload,
                    batch=batch,
                    events=events,
                    max_seconds=max_seconds,
                ),
                partial(
                    peers.batched_appends,
                    peer,
                    workload,
                    batch=batch,
                    events=events,
                    max_seconds=max_seconds,
                ),
            )
            for batch in (100, 1000)
        ]
        runs.append(
            (
                partial(
                    scenarios.concurrent_appenders,
                    store,
                    workload,
                    tasks=appenders,
                    seconds=appender_seconds,
                    warmup=warmup_seconds,
                ),
                partial(
                    peers.concurrent_appenders,
                    peer,
                    workload,
                    tasks=appenders,
                    seconds=appender_seconds,
                    warmup=warmup_seconds,
                ),
            )
        )
        runs.append(
            (
                partial(scenarios.catch_up, store, batch_size=subscribe_batch),
                partial(peers.catch_up, peer, batch_size=subscribe_batch),
            )
        )
        for figure, (ours, theirs) in zip(figures, runs, strict=True):
            say(f"{name} round {number + 1}/{rounds}: {figure.label}")
            # The appenders' count covers their timed window only, not their warm-up.
            whole = figure.key != "appenders"
            if number % 2 == 0:
                figure.ours.append(await _timed(ours, cpu_per_item=whole))
                figure.peer.append(await _timed(theirs, cpu_per_item=whole))
            else:
                figure.peer.append(await _timed(theirs, cpu_per_item=whole))
                figure.ours.append(await _timed(ours, cpu_per_item=whole))
    print(table(name, figures, ceilings), flush=True)
    return {
        "ceilings": {k: [m.to_json() for m in v] for k, v in ceilings.items()},
        "figures": {f.key: f.to_json(ceilings) for f in figures},
    }


def table(name: str, figures: list[Compared], ceilings: dict[str, list[Measurement]]) -> str:
    """Medians of the rounds for both stores, their spread, the ratio and the ceiling."""
    header = (
        f"{'figure':<40} {'ours':>9} {'(spread)':>13} {'peer':>9} {'(spread)':>13} "
        f"{'ours/peer':>9} {'(rounds)':>11} {'ceiling':>9} {'CPU us/event':>14}"
    )
    lines = [f"== {name}: ours against eventsourcing {peers.VERSION} ==", header, "-" * len(header)]
    for figure in figures:
        ours, peer = figure.medians()
        ratios = figure.ratios()
        ceiling = (
            f"{_median(ceilings[figure.ceiling]):>9,.0f}" if figure.ceiling is not None else ""
        )
        lines.append(
            f"{figure.label:<40} {ours:>9,.0f} {_spread(figure.ours):>13} {peer:>9,.0f} "
            f"{_spread(figure.peer):>13} {ours / peer if peer else 0:>9.2f} "
            f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>11} {ceiling:>9} "
            f"{_cpu_text(figure):>14}"
        )
    lines.append(
        "ceiling: raw inserts of 1,000 rows/transaction (rows/s) for the batched figures, raw"
        " single-row durable commits (commits/s) for the writers; medians of the rounds.\n"
        "CPU us/event: this process's CPU time per event, ours / peer, medians (the database"
        " server's is not in it on Postgres)"
    )
    return "\n".join(lines)
