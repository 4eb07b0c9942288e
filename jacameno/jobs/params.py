"""What a job may be asked to do: its kind's parameters, checked before it is queued, so a worker
never meets a job it cannot read. Mastering: a loudness preset (or a custom target) with a
true-peak ceiling, an optional gentle tilt EQ, and an optional reference asset of the same
project whose spectral balance is matched (and its loudness, with the `reference` preset). The
limits are those of jacameno.ai.mastering, which checks them again in the worker."""

from __future__ import annotations

import math
from typing import Any

# Integrated loudness targets, LUFS: streaming services, Apple's, EBU R128 broadcast.
PRESETS = {"streaming": -14.0, "apple": -16.0, "ebu_r128": -23.0}
OTHER_PRESETS = ("custom", "reference")  # a loudness given; the reference's loudness
DEFAULT_CEILING = -1.0  # dBTP
LOUDNESS_RANGE = (-40.0, -5.0)
CEILING_RANGE = (-12.0, 0.0)
ANALYSIS_KEYS: frozenset[str] = frozenset()
TILT_RANGE = (-1.5, 1.5)  # dB per octave around 1 kHz: a gentle tilt
MASTERING_KEYS = frozenset(
    {"preset", "target_lufs", "ceiling_dbtp", "tilt_db_per_octave", "reference_asset_id"}
)


class BadParams(ValueError):
    """The parameters do not describe a job of that kind (the message says which and why)."""


def _number(params: dict[str, Any], key: str, bounds: tuple[float, float]) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadParams(f"{key}: a number")
    if not bounds[0] <= value <= bounds[1]:
        raise BadParams(f"{key}: between {bounds[0]:g} and {bounds[1]:g}")
    return float(value)


def checked(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` completed with their defaults (mastering: the target and ceiling spelled out);
    BadParams if a key is unknown or a value does not fit."""
    known = ANALYSIS_KEYS if kind == "analysis" else MASTERING_KEYS
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadParams(f"unknown parameter(s) for {kind}: {', '.join(unknown)}")
    if kind == "analysis":
        return {}
    preset = params.get("preset", "streaming")
    if preset not in PRESETS and preset not in OTHER_PRESETS:
        raise BadParams(f"preset: one of {', '.join([*PRESETS, *OTHER_PRESETS])}")
    target = _number(params, "target_lufs", LOUDNESS_RANGE)
    if (preset == "custom") != (target is not None):
        raise BadParams("target_lufs: with the custom preset, and only with it")
    ceiling = _number(params, "ceiling_dbtp", CEILING_RANGE)
    tilt = _number(params, "tilt_db_per_octave", TILT_RANGE)
    reference = params.get("reference_asset_id")
    if reference is not None and not isinstance(reference, str):
        raise BadParams("reference_asset_id: an asset id")
    if preset == "reference" and reference is None:
        raise BadParams("reference_asset_id: required with the reference preset")
    return {
        "preset": preset,
        "target_lufs": PRESETS.get(preset, target),
        "ceiling_dbtp": DEFAULT_CEILING if ceiling is None else ceiling,
        "tilt_db_per_octave": 0.0 if tilt is None else tilt,
        "reference_asset_id": reference,
    }
