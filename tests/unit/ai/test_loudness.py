"""Loudness (ITU-R BS.1770-4), loudness range (EBU Tech 3342) and true peak on EBU-style test
signals with known answers, and our meter beside pyloudnorm (docs/ai.md, "Proof")."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from scipy import signal as sps

from jacameno.ai import levels, loudness, oversampling, testsignals


@pytest.mark.parametrize("rate", [44_100, 48_000, 96_000])
def test_a_minus_23_dbfs_stereo_1_khz_sine_reads_minus_23_lufs(rate: int) -> None:
    tone = testsignals.sine(1000.0, -23.0, 5.0, rate)
    assert loudness.integrated_loudness(tone, rate) == pytest.approx(-23.0, abs=0.1)
    assert round(loudness.integrated_loudness(tone, rate), 1) == -23.0


def test_the_48_khz_k_weighting_is_the_standards() -> None:
    """BS.1770-4 lists the two biquads' coefficients at 48 kHz."""
    shelf, highpass = loudness.k_weighting(48_000)
    assert shelf == pytest.approx(
        [
            1.53512485958697,
            -2.69169618940638,
            1.19839281085285,
            1.0,
            -1.69065929318241,
            0.73248077421585,
        ],
        abs=1e-9,
    )
    assert highpass == pytest.approx(
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], abs=1e-9
    )


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([-20.0, -30.0], 10.0),  # EBU Tech 3342, cases 1 to 4
        ([-20.0, -15.0], 5.0),
        ([-40.0, -20.0], 20.0),
        ([-50.0, -35.0, -20.0, -35.0, -50.0], 15.0),
    ],
)
def test_stepped_tones_give_their_loudness_range(steps: list[float], expected: float) -> None:
    signal = testsignals.steps(steps, 20.0, 48_000)
    assert loudness.loudness_range(signal, 48_000) == pytest.approx(expected, abs=0.1)


def test_gating_leaves_out_silence_and_quiet_passages() -> None:
    tone = testsignals.sine(1000.0, -23.0, 5.0, 48_000)
    with_gaps = np.concatenate(
        [tone, np.zeros((2, 48_000 * 5)), tone, testsignals.sine(1000.0, -60.0, 5.0, 48_000)],
        axis=1,
    )
    # ungated, half the time silent would read 3 dB lower; the gates leave only the blocks
    # that straddle a tone's edges to pull it down a little, as pyloudnorm's gates do too
    gated = loudness.integrated_loudness(with_gaps, 48_000)
    assert -23.3 < gated < -23.0
    assert gated == pytest.approx(
        pyloudnorm.Meter(48_000).integrated_loudness(with_gaps.T), abs=0.1
    )


def test_silence_and_audio_under_one_block_have_no_loudness() -> None:
    assert loudness.integrated_loudness(np.zeros((2, 48_000)), 48_000) == -math.inf
    short = testsignals.sine(1000.0, -10.0, 0.3, 48_000)
    assert loudness.integrated_loudness(short, 48_000) == -math.inf
    assert loudness.loudness_range(short, 48_000) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_our_meter_agrees_with_pyloudnorm(seed: int) -> None:
    mix = testsignals.mix(8.0, 44_100, seed=seed) * 10 ** (-(seed * 6) / 20)
    ours = loudness.integrated_loudness(mix, 44_100)
    theirs = pyloudnorm.Meter(44_100).integrated_loudness(mix.T)
    assert ours == pytest.approx(theirs, abs=0.1)


def test_the_true_peak_of_a_quarter_rate_sine_at_45_degrees_is_3_db_over_its_samples() -> None:
    rate = 48_000
    wave = testsignals.sine(rate / 4, 0.0, 1.0, rate, phase=math.pi / 4)
    fade = np.minimum(1.0, np.minimum(np.arange(rate), np.arange(rate)[::-1]) / 2400)
    wave = wave * fade
    assert levels.sample_peak(wave) == pytest.approx(-3.01, abs=0.01)
    assert oversampling.true_peak(wave) == pytest.approx(0.0, abs=0.2)
    assert oversampling.true_peak(wave * 0.5) == pytest.approx(-6.02, abs=0.2)


def test_the_true_peak_of_a_mix_full_of_inter_sample_peaks_agrees_with_a_16x_resampler() -> None:
    """Hard-clipped drums put their overshoots near Nyquist, where the standard's short 12-tap
    filter reads a dB low; ours reads what scipy's 16x polyphase resampler reads."""
    mix = testsignals.mix(8.0, 44_100, seed=2)
    ours = oversampling.true_peak(mix)
    finer = 20 * math.log10(float(np.abs(sps.resample_poly(mix, 16, 1, axis=1)).max()))
    assert ours > levels.sample_peak(mix) + 0.5
    assert ours == pytest.approx(finer, abs=0.2)
    assert oversampling.true_peak(np.zeros((1, 100))) == -math.inf


def test_the_peak_envelope_in_chunks_is_the_envelope_of_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mix = oversampling.to_tensor(testsignals.mix(2.0, 44_100, seed=5))
    whole = oversampling.peak_envelope(mix)
    monkeypatch.setattr(oversampling, "CHUNK_FRAMES", 10_000)  # nine chunks and a short one
    assert bool((oversampling.peak_envelope(mix) == whole).all())
