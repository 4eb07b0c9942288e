"""The limiter's promise, on the inputs that break limiters: the true peak of what comes out is at
or under the ceiling, whatever goes in (docs/ai.md, "Mastering")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jacameno.ai import limiter, oversampling
from tests.hypothesis_profiles import examples

RATE = 44_100
_rng = np.random.default_rng(0)
ADVERSARIAL = {
    "noise 20 dB over full scale": _rng.standard_normal((2, RATE)) * 10,
    "a lone impulse at +34 dBFS": np.pad(np.array([[50.0], [0.0]]), ((0, 0), (RATE, RATE))),
    "a full-scale square at Nyquist, +14 dB": np.tile(np.array([1.0, -1.0]), (2, RATE)) * 5,
    "fs/4 at 45 degrees, +18 dB": np.tile(
        np.sin(2 * np.pi * 0.25 * np.arange(RATE) + np.pi / 4), (2, 1)
    )
    * 8,
    "DC at +10 dB": np.full((2, RATE), 3.0),
    "loud from the first sample": np.concatenate([np.full((2, 10), 9.0), np.zeros((2, RATE))], 1),
    "loud to the last sample": np.concatenate([np.zeros((2, RATE)), np.full((2, 5), -9.0)], 1),
    "three samples": _rng.standard_normal((1, 3)) * 4,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
@pytest.mark.parametrize("ceiling", [-1.0, -0.1, -6.0])
def test_nothing_gets_over_the_ceiling(name: str, ceiling: float) -> None:
    limited = limiter.limit(oversampling.to_tensor(ADVERSARIAL[name]), ceiling, RATE)
    assert oversampling.true_peak(limited.signal.numpy()) <= ceiling
    assert limited.true_peak <= ceiling
    assert limited.max_reduction > 0


def test_audio_under_the_ceiling_passes_unchanged() -> None:
    quiet = oversampling.to_tensor(np.sin(np.linspace(0, 200, RATE))[None] * 0.5)
    limited = limiter.limit(quiet, -1.0, RATE)
    assert torch.equal(limited.signal, quiet)
    assert limited.max_reduction == 0.0


@settings(max_examples=examples(40), deadline=None)
@given(
    samples=arrays(
        np.float64,
        st.tuples(st.integers(1, 2), st.integers(1, 3000)),
        elements=st.floats(-1.0, 1.0, allow_nan=False),
    ),
    gain_db=st.floats(0.0, 40.0),
)
def test_any_signal_at_any_gain_ends_under_the_ceiling(samples: np.ndarray, gain_db: float) -> None:
    signal = oversampling.to_tensor(samples * 10 ** (gain_db / 20))
    limited = limiter.limit(signal, -1.0, RATE)
    assert oversampling.true_peak(limited.signal.numpy()) <= -1.0
