"""AI benchmark: `python -m load.bench_ai` (docs/benchmarks.md, "Analysis and mastering").

Runs jacameno.ai beside the tools people would otherwise use, on the same synthetic sets with
known answers, in one run: tempo and beats beside librosa's beat_track, loudness beside
pyloudnorm, mastering to a target beside a plain pedalboard limiter chain, mastering to a
reference beside Matchering 2.0. Each figure for each tool, and seconds per minute of audio
(targets: analysis <= 2 s, mastering <= 1.5 s per minute of stereo). Needs the `ai` and `bench`
extras; writes the run as JSON to load/results/ai-<UTC timestamp>.json."""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from jacameno.ai import (
    analysis,
    key,
    loudness,
    mastering,
    onsets,
    oversampling,
    scores,
    spectrum,
    tempo,
    testsignals,
)
from load import ai_references

T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / "results"
RATE = 44_100
ANALYSIS_TARGET_S_PER_MIN = 2.0
MASTERING_TARGET_S_PER_MIN = 1.5
TEMPOS = [60.0, 72.0, 85.0, 97.0, 110.0, 123.0, 136.0, 150.0, 163.0, 177.0, 190.0, 200.0]
LEVELS = [-30.0, -24.0, -18.0, -12.0, -6.0]


@dataclass(frozen=True, slots=True)
class Plan:
    seconds: float  # length of each tempo pattern and mix
    minute: float  # length of the throughput signals


@dataclass
class Row:
    """One figure of one tool."""

    section: str
    figure: str
    tool: str
    value: float | str
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "figure": self.figure,
            "tool": self.tool,
            "value": self.value,
            "target": self.target,
        }


def _timed(run: Callable[..., T], *args: Any) -> tuple[T, float]:
    start = time.perf_counter()
    result = run(*args)
    return result, time.perf_counter() - start


def _per_minute(seconds: float, audio_seconds: float) -> float:
    return round(seconds / (audio_seconds / 60.0), 3)


def bench_tempo(plan: Plan) -> list[Row]:
    patterns: list[tuple[str, float, testsignals.Rhythmic]] = []
    for i, bpm in enumerate(TEMPOS):
        maker = testsignals.clicks if i % 2 == 0 else testsignals.drums
        patterns.append((f"{bpm:g}", bpm, maker(bpm, plan.seconds)))
    patterns.append(("96 swung", 96.0, testsignals.drums(96.0, plan.seconds, swing=2 / 3)))
    change = (plan.seconds / 2, 120.0)
    patterns.append(("90->120", 0.0, testsignals.clicks(90.0, plan.seconds, change=change)))

    def ours(p: testsignals.Rhythmic) -> tuple[float, list[float]]:
        found = tempo.rhythm(onsets.envelope(p.samples, p.sample_rate))
        return found.bpm, found.beats

    def theirs(p: testsignals.Rhythmic) -> tuple[float, list[float]]:
        return ai_references.librosa_beats(p.samples, p.sample_rate)

    theirs(patterns[0][2])  # numba compiles librosa's tracker on its first call: not timed
    rows = []
    for tool, run in (("jacameno", ours), ("librosa beat_track", theirs)):
        errors, octaves, fs, elapsed, audio = [], 0, [], 0.0, 0.0
        for _, bpm, pattern in patterns:
            (found, beats), seconds = _timed(run, pattern)
            elapsed += seconds
            audio += pattern.samples.shape[0] / pattern.sample_rate
            fs.append(scores.beat_f_measure(beats, pattern.beats.tolist()))
            if bpm:
                octaves += scores.octave_error(found, bpm)
                if not scores.octave_error(found, bpm):
                    errors.append(abs(found - bpm))
        rows += [
            Row(
                "tempo",
                "max tempo error (BPM, right octave)",
                tool,
                round(max(errors), 3),
                "<= 0.2",
            ),
            Row("tempo", "mean tempo error (BPM)", tool, round(float(np.mean(errors)), 3)),
            Row("tempo", "octave errors", tool, f"{octaves} of {len(patterns) - 1}", "0"),
            Row("tempo", "min beat F-measure (70 ms)", tool, round(min(fs), 3), ">= 0.98"),
            Row("tempo", "mean beat F-measure (70 ms)", tool, round(float(np.mean(fs)), 3)),
            Row("tempo", "seconds per minute of mono", tool, _per_minute(elapsed, audio)),
        ]
    return rows


def bench_key() -> list[Row]:
    total, top_two, cases = 0.0, 0, 0
    for timbre in ("saw", "piano"):
        for minor in (False, True):
            for tonic in range(12):
                found = key.estimate(
                    testsignals.progression(tonic, minor, tonic % 3, timbre=timbre), 22_050
                )
                truth = testsignals.key_name(tonic, minor)
                cases += 1
                if found is not None:
                    total += scores.key_score(found.name, truth)
                    top_two += truth in (found.name, found.second)
    return [
        Row(
            "key",
            "weighted key score (24 keys x 2 timbres)",
            "jacameno",
            round(total / cases, 3),
            ">= 0.8",
        ),
        Row("key", "true key in the top two", "jacameno", f"{top_two} of {cases}", "all"),
    ]


def bench_loudness(plan: Plan) -> list[Row]:
    sine = testsignals.sine(1000.0, -23.0, 10.0, 48_000)
    steps = testsignals.steps([-20.0, -30.0], 20.0, 48_000)
    mix = testsignals.mix(plan.minute, RATE, seed=1)
    rows = []
    tools: list[tuple[str, Callable[..., float], Callable[..., float]]] = [
        ("jacameno", loudness.integrated_loudness, loudness.loudness_range),
        ("pyloudnorm", ai_references.pyloudnorm_integrated, ai_references.pyloudnorm_range),
    ]
    for tool, integrated, loudness_range in tools:
        _, seconds = _timed(integrated, mix, RATE)
        rows += [
            Row(
                "loudness",
                "-23 dBFS 1 kHz stereo sine (LUFS)",
                tool,
                round(integrated(sine, 48_000), 3),
                "-23.0 +- 0.1",
            ),
            Row(
                "loudness",
                "LRA of -20/-30 dB steps (LU)",
                tool,
                round(loudness_range(steps, 48_000), 3),
                "10.0 +- 0.1",
            ),
            Row(
                "loudness", "seconds per minute of stereo", tool, _per_minute(seconds, plan.minute)
            ),
        ]
    quarter = testsignals.sine(48_000 / 4, 0.0, 1.0, 48_000, phase=math.pi / 4)
    fade = np.minimum(1.0, np.minimum(np.arange(48_000), np.arange(48_000)[::-1]) / 2400)
    rows.append(
        Row(
            "loudness",
            "true peak of fs/4 sine at 45 deg (dBTP)",
            "jacameno",
            round(oversampling.true_peak(quarter * fade), 3),
            "0.0 +- 0.2",
        )
    )
    return rows


def _mix_at(lufs: float, seconds: float, seed: int) -> np.ndarray:
    mix = testsignals.mix(seconds, RATE, seed=seed)
    return mix * 10 ** ((lufs - loudness.integrated_loudness(mix, RATE)) / 20)


def _outcome(
    section: str,
    tool: str,
    outputs: list[np.ndarray],
    goal: list[float],
    ceiling: float,
    elapsed: float,
    audio: float,
) -> list[Row]:
    errors = [
        abs(loudness.integrated_loudness(o, RATE) - g) for o, g in zip(outputs, goal, strict=True)
    ]
    peaks = [oversampling.true_peak(o) for o in outputs]
    within = sum(e <= 0.3 for e in errors)
    under = sum(p <= ceiling for p in peaks)
    return [
        Row(section, "max loudness error (LU)", tool, round(max(errors), 3), "<= 0.3"),
        Row(section, "within 0.3 LU", tool, f"{within} of {len(outputs)}", "all"),
        Row(section, "max true peak (dBTP)", tool, round(max(peaks), 3), f"<= {ceiling:g}"),
        Row(
            section, "true peak at or under the ceiling", tool, f"{under} of {len(outputs)}", "all"
        ),
        Row(
            section,
            "seconds per minute of stereo",
            tool,
            _per_minute(elapsed, audio),
            f"<= {MASTERING_TARGET_S_PER_MIN:g}" if tool == "jacameno" else "",
        ),
    ]


def bench_mastering(plan: Plan) -> list[Row]:
    mixes = [_mix_at(level, plan.seconds, seed=i) for i, level in enumerate(LEVELS)]
    audio = plan.seconds * len(mixes)
    target = mastering.Target.named("streaming")
    outputs, elapsed = [], 0.0
    for mix in mixes:
        done, seconds = _timed(mastering.master, mix, RATE, target)
        outputs.append(done.samples.astype(np.float64))
        elapsed += seconds
    rows = _outcome(
        "mastering to -14 LUFS / -1 dBTP",
        "jacameno",
        outputs,
        [-14.0] * len(mixes),
        -1.0,
        elapsed,
        audio,
    )
    outputs, elapsed = [], 0.0
    for mix in mixes:
        out, seconds = _timed(ai_references.pedalboard_chain, mix, RATE, -14.0, -1.0)
        outputs.append(out)
        elapsed += seconds
    rows += _outcome(
        "mastering to -14 LUFS / -1 dBTP",
        "pedalboard Gain+Limiter",
        outputs,
        [-14.0] * len(mixes),
        -1.0,
        elapsed,
        audio,
    )
    return rows


def bench_reference(plan: Plan) -> list[Row]:
    rows = []
    cases = []
    for seed, lufs in [(0, -12.0), (1, -14.0), (2, -16.0)]:
        mix = _mix_at(-20.0, plan.seconds, seed)
        ref = testsignals.known_eq(mix, RATE)
        cases.append(
            (mix, ref * 10 ** ((lufs - loudness.integrated_loudness(ref, RATE)) / 20), lufs)
        )
    tools: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
        (
            "jacameno",
            lambda m, r: mastering.master(
                m, RATE, mastering.Target.named("reference"), r
            ).samples.astype(np.float64),
        ),
        ("Matchering 2.0", lambda m, r: ai_references.matchering_master(m, r, RATE)),
    ]
    for tool, run in tools:
        outputs, elapsed, distances = [], 0.0, []
        for mix, ref, _ in cases:
            out, seconds = _timed(run, mix, ref)
            outputs.append(out)
            elapsed += seconds
            distances.append(
                spectrum.spectral_distance(
                    oversampling.to_tensor(out), oversampling.to_tensor(ref), RATE
                )
            )
        section = "mastering to a reference (known EQ + gain)"
        rows.append(
            Row(section, "max spectral distance (dB)", tool, round(max(distances), 3), "<= 0.27")
        )
        rows += _outcome(
            section, tool, outputs, [c[2] for c in cases], -1.0, elapsed, plan.seconds * len(cases)
        )
    return rows


def bench_analysis(plan: Plan) -> list[Row]:
    mix = testsignals.mix(plan.minute, RATE, seed=3)
    analysis.analyse(mix[:, : RATE * 5], RATE)  # warm-up: torch's first convolution
    _, seconds = _timed(analysis.analyse, mix, RATE)
    return [
        Row(
            "analysis",
            "analyse(): seconds per minute of stereo",
            "jacameno",
            _per_minute(seconds, plan.minute),
            f"<= {ANALYSIS_TARGET_S_PER_MIN:g}",
        )
    ]


def render(rows: list[Row]) -> str:
    lines, section = [], None
    for row in rows:
        if row.section != section:
            section = row.section
            lines += ["", f"== {section} ==", f"{'figure':<44} {'tool':<26} {'value':>12}  target"]
        lines.append(f"{row.figure:<44} {row.tool:<26} {row.value!s:>12}  {row.target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.bench_ai", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short signals: a smoke run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: one core per tool)"
    )
    args = parser.parse_args(argv)
    oversampling.limit_threads(args.threads)
    plan = Plan(seconds=8.0, minute=15.0) if args.quick else Plan(seconds=30.0, minute=60.0)
    rows: list[Row] = []
    for bench in (bench_tempo, bench_loudness, bench_mastering, bench_reference, bench_analysis):
        rows += bench(plan)
    rows += bench_key()
    print(render(rows))
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "quick": args.quick,
        "threads": args.threads,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "device": str(oversampling.device()),
        },
        "rows": [r.to_json() for r in rows],
    }
    for name in (f"ai-{stamp}.json", "ai-latest.json"):
        (args.results / name).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
