"""Mastering to loudness targets and to a reference (docs/ai.md, "Proof"): synthetic mixes from
-30 to -6 LUFS with inter-sample peaks end within 0.3 LU of the target with their true peak at
or below the ceiling, every one; a reference made by a known EQ and gain is matched within
0.27 dB of spectral distance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from jacameno.ai import levels, loudness, mastering, oversampling, spectrum, testsignals
from jacameno.ai.errors import InvalidAudio, InvalidTarget, SilentAudio
from jacameno.ai.mastering import Target

RATE = 44_100
MAX_LU_ERROR = 0.3
MAX_SPECTRAL_DISTANCE_DB = 0.27


def _mix_at(lufs: float, seed: int, seconds: float = 5.0) -> np.ndarray:
    mix = testsignals.mix(seconds, RATE, seed=seed)
    return mix * 10 ** ((lufs - loudness.integrated_loudness(mix, RATE)) / 20)


TARGETS = [
    Target.named("streaming"),
    Target.named("apple"),
    Target.named("ebu_r128"),
    Target.named("custom", loudness=-9.0, ceiling=-0.5),  # heavy limiting
    Target.named("custom", loudness=-12.0, ceiling=-2.0, tilt=0.5),
]


@pytest.mark.parametrize("level", [-30.0, -24.0, -18.0, -12.0, -6.0])
def test_every_mix_reaches_every_target_under_its_ceiling(level: float) -> None:
    mix = _mix_at(level, seed=int(-level) % 5)
    assert oversampling.true_peak(mix) > levels.sample_peak(mix) + 0.1  # inter-sample peaks
    for target in TARGETS:
        done = mastering.master(mix, RATE, target)
        assert target.loudness is not None
        out = done.samples.astype(np.float64)
        measured = loudness.integrated_loudness(out, RATE)
        assert abs(measured - target.loudness) <= MAX_LU_ERROR, (level, target)
        assert oversampling.true_peak(out) <= target.ceiling, (level, target)
        assert done.loudness_after == pytest.approx(measured, abs=1e-3)
        assert done.true_peak_after <= target.ceiling
        assert done.loudness_before == pytest.approx(level, abs=0.01)
        assert done.samples.shape == mix.shape
        assert done.samples.dtype == np.float32


@pytest.mark.parametrize(("seed", "reference_lufs"), [(0, -12.0), (1, -16.0), (2, -14.0)])
def test_a_reference_made_by_a_known_eq_and_gain_is_matched(
    seed: int, reference_lufs: float
) -> None:
    mix = _mix_at(-20.0, seed)
    reference = testsignals.known_eq(mix, RATE)
    reference = reference * 10 ** (
        (reference_lufs - loudness.integrated_loudness(reference, RATE)) / 20
    )
    done = mastering.master(mix, RATE, Target.named("reference"), reference)
    out = done.samples.astype(np.float64)
    before = spectrum.spectral_distance(
        oversampling.to_tensor(mix), oversampling.to_tensor(reference), RATE
    )
    after = spectrum.spectral_distance(
        oversampling.to_tensor(out), oversampling.to_tensor(reference), RATE
    )
    assert before > 1.5
    assert after <= MAX_SPECTRAL_DISTANCE_DB
    assert abs(loudness.integrated_loudness(out, RATE) - reference_lufs) <= MAX_LU_ERROR
    assert oversampling.true_peak(out) <= -1.0
    assert done.goal_loudness == pytest.approx(reference_lufs, abs=0.01)
    # the EQ it reports is the known one: up in the lows, down around 2.5 kHz
    low = done.eq[spectrum.DISTANCE_BANDS_HZ.index(1000.0 * 2.0 ** (-9 / 3))]  # 125 Hz
    presence = done.eq[spectrum.DISTANCE_BANDS_HZ.index(1000.0 * 2.0 ** (4 / 3))]  # 2.5 kHz
    assert low - presence > 4.0


def test_a_reference_at_another_sample_rate_is_resampled() -> None:
    mix = _mix_at(-20.0, 3, seconds=5.0)
    reference = sps.resample_poly(mix, 160, 147, axis=1) * 2.0  # the same at 48 kHz, +6 dB
    done = mastering.master(mix, RATE, Target.named("reference"), reference, 48_000)
    assert done.goal_loudness == pytest.approx(-14.0, abs=0.1)
    assert done.loudness_after == pytest.approx(done.goal_loudness, abs=MAX_LU_ERROR)
    assert max(abs(db) for db in done.eq) < 0.5


def test_the_tilt_lifts_the_top_and_lowers_the_bottom() -> None:
    mix = _mix_at(-18.0, 1, seconds=5.0)
    flat = mastering.master(mix, RATE, Target.named("streaming"))
    tilted = mastering.master(mix, RATE, Target.named("streaming", tilt=1.0))
    assert tilted.eq[-1] - tilted.eq[0] == pytest.approx(9.0, abs=0.3)  # 9 octaves, 1 dB each
    assert max(abs(db) for db in flat.eq) == 0.0
    assert tilted.loudness_after == pytest.approx(-14.0, abs=MAX_LU_ERROR)
    json = tilted.to_json()
    assert json["target"] == {
        "preset": "streaming",
        "loudness": -14.0,
        "ceiling": -1.0,
        "tilt": 1.0,
    }
    assert len(json["eq"]) == len(spectrum.DISTANCE_BANDS_HZ)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Target.named("loudest"), "unknown preset"),
        (lambda: Target.named("custom"), "needs a loudness"),
        (lambda: Target.named("streaming", loudness=-10.0), "sets its own loudness"),
        (lambda: Target.named("custom", loudness=-3.0), "outside"),
        (lambda: Target.named("custom", loudness=-14.0, ceiling=0.5), "ceiling"),
        (lambda: Target.named("streaming", tilt=3.0), "gentle"),
    ],
)
def test_impossible_targets_are_refused(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(InvalidTarget, match=message):
        make()


def test_silence_a_missing_reference_and_bad_samples_are_refused() -> None:
    mix = _mix_at(-20.0, 0, seconds=2.0)
    with pytest.raises(SilentAudio, match="audio"):
        mastering.master(np.zeros((2, RATE)), RATE, Target.named("streaming"))
    with pytest.raises(SilentAudio, match="reference"):
        mastering.master(mix, RATE, Target.named("reference"), np.zeros((2, RATE)))
    with pytest.raises(InvalidTarget, match="needs a reference"):
        mastering.master(mix, RATE, Target.named("reference"))
    with pytest.raises(InvalidAudio, match="NaN"):
        mastering.master(np.full((2, RATE), np.nan), RATE, Target.named("streaming"))


@pytest.mark.parametrize("channels", [1, 6])
def test_mono_and_surround_are_mastered_with_their_channels_linked(channels: int) -> None:
    mix = _mix_at(-20.0, 2, seconds=4.0)
    layout = np.resize(mix, (channels, mix.shape[1]))
    done = mastering.master(layout, RATE, Target.named("streaming"))
    assert done.samples.shape == layout.shape
    assert done.loudness_after == pytest.approx(-14.0, abs=MAX_LU_ERROR)
    assert oversampling.true_peak(done.samples) <= -1.0
