"""`master(samples, sample_rate, target, reference=None) -> Mastered`: loudness to a target with
a true-peak ceiling, an optional gentle tilt, and matching a reference track's spectral balance
and loudness (docs/ai.md).

The chain: EQ (the reference match and the tilt, one zero-phase filter: jacameno.ai.spectrum),
then the gain that brings the integrated loudness (BS.1770-4) to the target *after* the
look-ahead true-peak limiter (jacameno.ai.limiter) has held the ceiling. Limiting lowers the
loudness, so the gain is found by a secant search; each try reuses the K-weighted power and the
oversampled peak envelope measured once, since both scale with the gain, and only the limiter's
gain curve is computed again. The last try is rendered and measured exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import signal as sps

from jacameno.ai import limiter, loudness, spectrum
from jacameno.ai.audio import checked
from jacameno.ai.errors import InvalidTarget, SilentAudio
from jacameno.ai.oversampling import peak_envelope, to_tensor, true_peak_linear

PRESETS = {"streaming": -14.0, "apple": -16.0, "ebu_r128": -23.0}
LOUDNESS_RANGE = (-40.0, -5.0)  # LUFS a target may ask for
CEILING_RANGE = (-12.0, 0.0)  # dBTP
MAX_LIMITING_DB = 20.0  # the most gain the search adds beyond what the loudness alone asks
TOLERANCE_LU = 0.05  # the search stops this close to the target (the contract is 0.3 LU)
_SEARCH_STEPS = 12
_RENDER_STEPS = 3
_MATCH_CORRECTIONS = 4
_MATCH_GOOD_ENOUGH_DB = 0.1  # spectral distance at which corrections stop (the contract: 0.27)


@dataclass(frozen=True, slots=True)
class Target:
    """What to master to: integrated loudness (LUFS; None = the reference's), true-peak
    ceiling (dBTP), tilt (dB per octave around 1 kHz, 0 = none), and the preset's name."""

    loudness: float | None
    ceiling: float = -1.0
    tilt: float = 0.0
    preset: str = "custom"

    def __post_init__(self) -> None:
        if self.loudness is not None and not (
            LOUDNESS_RANGE[0] <= self.loudness <= LOUDNESS_RANGE[1]
        ):
            raise InvalidTarget(
                f"loudness {self.loudness} LUFS is outside {LOUDNESS_RANGE[0]}..{LOUDNESS_RANGE[1]}"
            )
        if not CEILING_RANGE[0] <= self.ceiling <= CEILING_RANGE[1]:
            raise InvalidTarget(
                f"ceiling {self.ceiling} dBTP is outside {CEILING_RANGE[0]}..{CEILING_RANGE[1]}"
            )
        if abs(self.tilt) > spectrum.MAX_TILT_DB_PER_OCTAVE:
            raise InvalidTarget(
                f"tilt {self.tilt} dB/octave is steeper than "
                f"+-{spectrum.MAX_TILT_DB_PER_OCTAVE} (a gentle tilt)"
            )

    @classmethod
    def named(
        cls,
        preset: str,
        *,
        loudness: float | None = None,
        ceiling: float = -1.0,
        tilt: float = 0.0,
    ) -> Target:
        """A preset by name (streaming -14, apple -16, ebu_r128 -23 LUFS), `custom` with a
        `loudness`, or `reference` (the reference track's loudness). Raises InvalidTarget."""
        if preset in PRESETS:
            if loudness is not None:
                raise InvalidTarget(f"preset {preset!r} sets its own loudness")
            return cls(PRESETS[preset], ceiling, tilt, preset)
        if preset == "custom":
            if loudness is None:
                raise InvalidTarget("a custom target needs a loudness")
            return cls(loudness, ceiling, tilt, preset)
        if preset == "reference":
            return cls(None, ceiling, tilt, preset)
        names = ", ".join([*PRESETS, "custom", "reference"])
        raise InvalidTarget(f"unknown preset {preset!r}: one of {names}")

    def to_json(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "loudness": self.loudness,
            "ceiling": self.ceiling,
            "tilt": self.tilt,
        }


@dataclass(frozen=True, slots=True)
class Mastered:
    """The mastered audio (float32, (channels, frames), same rate) and what was done to it."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    target: Target
    goal_loudness: float  # the loudness aimed at (the target's or the reference's)
    loudness_before: float
    loudness_after: float
    true_peak_before: float
    true_peak_after: float
    gain: float  # dB, before the limiter
    max_reduction: float  # dB, the limiter's deepest
    eq: list[float]  # dB applied in each third-octave band of spectrum.DISTANCE_BANDS_HZ

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "goal_loudness": round(self.goal_loudness, 2),
            "loudness_before": round(self.loudness_before, 2),
            "loudness_after": round(self.loudness_after, 2),
            "true_peak_before": round(self.true_peak_before, 2),
            "true_peak_after": round(self.true_peak_after, 2),
            "gain": round(self.gain, 2),
            "max_reduction": round(self.max_reduction, 2),
            "eq": [
                {"hz": round(hz, 1), "db": round(db, 2)}
                for hz, db in zip(spectrum.DISTANCE_BANDS_HZ, self.eq, strict=True)
            ],
        }


def _measured(power: npt.NDArray[np.float64], rate: int, what: str) -> float:
    """The integrated loudness of a `loudness.weighted_power`; SilentAudio if there is none."""
    level = loudness.loudness_of_power(power, rate)
    if not math.isfinite(level):
        raise SilentAudio(f"the {what} has no measurable loudness (silent, or under 0.4 s)")
    return level


def _resampled(samples: npt.NDArray[np.float64], rate: int, to: int) -> npt.NDArray[np.float64]:
    if rate == to:
        return samples
    factor = math.gcd(rate, to)
    return np.asarray(sps.resample_poly(samples, to // factor, rate // factor, axis=1))


class _Search:
    """The limited loudness for a gain, estimated from measures taken once."""

    def __init__(
        self,
        signal: torch.Tensor,
        rate: int,
        ceiling: float,
        power: npt.NDArray[np.float64] | None = None,
    ) -> None:
        self.rate = rate
        self.ceiling = 10.0 ** ((ceiling - limiter.MARGIN_DB) / 20.0)
        self.envelope = peak_envelope(signal)
        self.need = limiter.Need(self.envelope, rate)
        if power is None:
            power = loudness.weighted_power(signal.double().cpu().numpy(), rate)
        self.power = power

    def loudness(self, gain_db: float) -> float:
        reduction = self.need.reduction_db(self.ceiling, gain_db)
        applied = torch.pow(10.0, (gain_db - reduction) / 10.0).cpu().numpy()
        return loudness.loudness_of_power(self.power * applied, self.rate)


def _solve(search: _Search, goal: float, start: float) -> float:
    """The gain (dB) whose limited loudness is `goal`, by secant steps from `start` (the
    loudness never falls as the gain rises, and rises by at most as much). Never more than
    MAX_LIMITING_DB above `start`: a goal that needs more is out of reach at this ceiling, and
    the result falls short of it rather than being crushed."""
    highest = start + MAX_LIMITING_DB
    gain, error = start, search.loudness(start) - goal
    previous: tuple[float, float] | None = None
    for _ in range(_SEARCH_STEPS):
        if abs(error) <= TOLERANCE_LU:
            break
        slope = 1.0
        if previous is not None and previous[0] != gain:
            slope = (error - previous[1]) / (gain - previous[0])
            slope = min(1.0, max(0.05, slope))
        previous = (gain, error)
        gain = min(highest, gain - error / slope)
        if gain == previous[0]:
            break
        error = search.loudness(gain) - goal
    return gain


@dataclass(frozen=True, slots=True)
class _Rendered:
    limited: limiter.Limited
    loudness: float
    gain: float
    peak_before: float  # linear, of the equalised signal


def _render(
    signal: torch.Tensor,
    curve: torch.Tensor,
    goal: float,
    ceiling: float,
    rate: int,
    power: npt.NDArray[np.float64] | None = None,
) -> _Rendered:
    """EQ by `curve`, then the gain that meets `goal` after limiting to `ceiling`. `power`,
    when the caller has it, is `signal`'s weighted power (used when there is no EQ)."""
    equalised = signal
    if bool(curve.abs().max() > 1e-6):
        equalised, power = spectrum.equalise(signal, curve, rate), None
    search = _Search(equalised, rate, ceiling, power)
    start = goal - loudness.loudness_of_power(search.power, rate)
    gain = _solve(search, goal, start)
    for step in range(_RENDER_STEPS):
        scale = 10.0 ** (gain / 20.0)
        limited = limiter.limit(
            equalised * scale, ceiling, rate, search.envelope * scale, search.need.scaled(gain)
        )
        after = loudness.integrated_loudness(limited.signal.double().cpu().numpy(), rate)
        if abs(after - goal) <= 2 * TOLERANCE_LU or step == _RENDER_STEPS - 1:
            break
        gain = min(start + MAX_LIMITING_DB, gain + goal - after)
    return _Rendered(limited, after, gain, float(search.envelope.max().item()))


def _corrected(
    rendered: _Rendered,
    signal: torch.Tensor,
    curve: torch.Tensor,
    reference: spectrum.Profile,
    goal: float,
    ceiling: float,
    rate: int,
) -> _Rendered:
    """The limiter tames the loudest parts (often the low end's kicks) and so shifts the
    balance: measure what came out against the reference and correct the EQ, a few times at
    most. Under heavy limiting a correction only partly arrives (boosting the lows makes the
    limiter hold them down harder), so each bin's correction is divided by how much of the
    previous one arrived (a least-squares secant step over all bins), which converges in two or
    three renders. The best render is kept, and `curve` is left as its EQ (the one `eq` reports)."""
    previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (applied step, residual)
    best, best_distance, best_curve = rendered, math.inf, curve.clone()
    for attempt in range(_MATCH_CORRECTIONS + 1):
        out = spectrum.profile(rendered.limited.signal, rate)
        distance = spectrum.distance(out, reference)
        if distance < best_distance:
            best, best_distance, best_curve = rendered, distance, curve.clone()
        if distance <= _MATCH_GOOD_ENOUGH_DB or attempt == _MATCH_CORRECTIONS:
            break
        residual = spectrum.match_curve(out, reference, rate).cpu().double()
        step = residual
        if previous is not None:
            applied, before = previous
            arrived = float((applied * (before - residual)).sum() / (applied * applied).sum())
            step = residual / min(1.0, max(0.5, arrived))
        curve += step
        curve.clamp_(-spectrum.MAX_MATCH_DB, spectrum.MAX_MATCH_DB)
        previous = (step, residual)
        rendered = _render(signal, curve, goal, ceiling, rate)
    curve.copy_(best_curve)
    return best


def master(
    samples: npt.ArrayLike,
    sample_rate: int,
    target: Target,
    reference: npt.ArrayLike | None = None,
    reference_rate: int | None = None,
) -> Mastered:
    """Master `samples` (channels, frames) to `target`; with a `reference` (channels, frames, at
    `reference_rate`, by default the same rate), match its spectral balance, and its loudness
    when the target's loudness is None. The result's true peak is at most the ceiling, always;
    its loudness is within 0.3 LU of the goal unless the goal is beyond what the ceiling allows.
    Raises InvalidAudio, SilentAudio (no loudness to work from), InvalidTarget (a reference
    target without a reference)."""
    audio = checked(samples, sample_rate)
    power = loudness.weighted_power(audio, sample_rate)
    before = _measured(power, sample_rate, "audio")
    signal = to_tensor(audio)
    curve = torch.zeros(spectrum.FFT_SIZE // 2 + 1, dtype=torch.float64)
    if target.tilt:
        curve += spectrum.tilt_curve(target.tilt, sample_rate)
    goal = target.loudness
    matched: spectrum.Profile | None = None
    if reference is not None:
        ref = checked(reference, reference_rate or sample_rate)
        ref = _resampled(ref, reference_rate or sample_rate, sample_rate)
        reference_loudness = _measured(
            loudness.weighted_power(ref, sample_rate), sample_rate, "reference"
        )
        goal = reference_loudness if goal is None else goal
        matched = spectrum.profile(to_tensor(ref), sample_rate)
        source = spectrum.profile(signal, sample_rate)
        curve += spectrum.match_curve(source, matched, sample_rate).cpu().double()
    if goal is None:
        raise InvalidTarget("a reference target needs a reference track")
    rendered = _render(signal, curve, goal, target.ceiling, sample_rate, power)
    if matched is not None:
        rendered = _corrected(rendered, signal, curve, matched, goal, target.ceiling, sample_rate)
    peak_before = rendered.peak_before if not bool(curve.abs().max() > 1e-6) else None
    return Mastered(
        samples=rendered.limited.signal.cpu().numpy().astype(np.float32),
        sample_rate=sample_rate,
        target=target,
        goal_loudness=goal,
        loudness_before=before,
        loudness_after=rendered.loudness,
        true_peak_before=20.0 * math.log10(peak_before or true_peak_linear(audio)),
        true_peak_after=rendered.limited.true_peak,
        gain=rendered.gain,
        max_reduction=rendered.limited.max_reduction,
        eq=spectrum.band_means(curve, sample_rate),
    )
