"""Targets, the printed table and the JSON file of one benchmark run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load.stats import Measurement

# The design's reference ceilings on these machines (DESIGN.md, "Facts about our dependencies").
REFERENCE_CEILINGS = {
    "postgres": {"batched_insert": 200_000.0, "single_commit": 3_000.0},
    "sqlite": {"batched_insert": 400_000.0, "single_commit": 3_800.0},
}


@dataclass(frozen=True, slots=True)
class Target:
    min_rate: float
    max_p99_ms: float | None = None

    def met(self, m: Measurement) -> bool:
        p99 = m.latency_ms(99)
        return m.rate >= self.min_rate and (
            self.max_p99_ms is None or (p99 is not None and p99 <= self.max_p99_ms)
        )

    def describe(self, unit: str) -> str:
        text = f">= {self.min_rate:,.0f} {unit}"
        return text if self.max_p99_ms is None else f"{text}, p99 <= {self.max_p99_ms:g} ms"


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the report: a measurement, its unit, and optionally a target and the ceiling
    it is compared with."""

    key: str
    label: str
    unit: str
    measurement: Measurement
    target: Target | None = None
    ceiling: str | None = None  # key of the ceiling figure it is a ratio of
    also: str | None = None  # key of a second, closer ceiling, reported beside the first

    def to_json(self, ceilings: dict[str, Figure]) -> dict[str, Any]:
        result: dict[str, Any] = {"label": self.label, "unit": self.unit}
        result |= self.measurement.to_json()
        if self.ceiling is not None:
            result["ceiling"] = self.ceiling
            result["ratio_to_ceiling"] = round(self.ratio(ceilings), 3)
        if self.also is not None:
            result[f"ratio_to_{self.also}"] = round(self.ratio(ceilings, self.also), 3)
        if self.target is not None:
            result["target"] = self.target.describe(self.unit)
            result["target_met"] = self.target.met(self.measurement)
        return result

    def ratio(self, ceilings: dict[str, Figure], key: str | None = None) -> float:
        key = key or self.ceiling
        assert key is not None
        base = ceilings[key].measurement.rate
        return self.measurement.rate / base if base else 0.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(backend: str, ceilings: list[Figure], figures: list[Figure]) -> str:
    """The figures of one backend as a fixed-width text table."""
    by_key = {c.key: c for c in ceilings}
    header = (
        f"{'figure':<44} {'rate':>11} {'unit':<9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'x ceiling':>9}  {'target':<32} {'met':<4}"
    )
    lines = [f"== {backend} ==", header, "-" * len(header)]
    reference = REFERENCE_CEILINGS.get(backend, {})
    for fig in ceilings:
        m = fig.measurement
        ref = reference.get(fig.key)
        note = f"(DESIGN.md: ~{ref:,.0f})" if ref else ""
        lines.append(
            f"{fig.label:<44} {m.rate:>11,.0f} {fig.unit:<9} {_ms(m.latency_ms(50)):>7} "
            f"{_ms(m.latency_ms(99)):>7} {'':>9}  {note:<32}"
        )
    for fig in figures:
        m = fig.measurement
        ratio = f"{fig.ratio(by_key):.2f}" if fig.ceiling else ""
        target = fig.target.describe(fig.unit) if fig.target else ""
        met = ("yes" if fig.target.met(m) else "NO") if fig.target else ""
        lines.append(
            f"{fig.label:<44} {m.rate:>11,.0f} {fig.unit:<9} {_ms(m.latency_ms(50)):>7} "
            f"{_ms(m.latency_ms(99)):>7} {ratio:>9}  {target:<32} {met:<4}"
        )
        for name, value in m.extra.items():
            lines.append(f"  {name}: {value:,.1f}")
        if fig.also is not None:
            lines.append(f"  x {by_key[fig.also].label}: {fig.ratio(by_key, fig.also):.2f}")
    return "\n".join(lines)


def write_json(
    folder: Path, stamp: str, document: dict[str, Any], name: str = "eventstore"
) -> list[Path]:
    """Write the run to `<name>-<stamp>.json` and `<name>-latest.json` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    paths = [folder / f"{name}-{stamp}.json", folder / f"{name}-latest.json"]
    for path in paths:
        path.write_text(text)
    return paths
