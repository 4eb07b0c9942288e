"""The projection lag figures: seconds behind and the recent apply rate, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jacameno.settings import Settings, SettingsError
from projections.lag import Throughput, from_ms, seconds_behind


def test_seconds_behind_is_the_age_of_the_oldest_pending_event_and_zero_without_one() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert seconds_behind(None, now) == 0.0
    assert seconds_behind(now - timedelta(seconds=2.5), now) == 2.5
    assert seconds_behind(now + timedelta(seconds=1), now) == 0.0  # clocks of two nodes
    assert from_ms(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_throughput_counts_the_events_of_the_last_window_only() -> None:
    now = [100.0]
    rate = Throughput(window=10, clock=lambda: now[0])
    assert rate.rate() == 0.0
    now[0] = 102.0
    rate.applied(20)
    rate.applied(0)
    assert rate.rate() == 10.0  # 20 events in the 2 s since the start
    now[0] = 110.0
    rate.applied(30)
    assert rate.rate() == 5.0  # 50 in the 10 s window
    now[0] = 113.0
    assert rate.rate() == 3.0  # the first 20 left the window


def test_readiness_requires_a_maximum_lag_only_when_one_is_set(tmp_path: Path) -> None:
    base = {"JACAMENO_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).ready_max_projection_lag_seconds is None
    key = "JACAMENO_READY_MAX_PROJECTION_LAG_SECONDS"
    assert Settings.from_env({**base, key: "5"}).ready_max_projection_lag_seconds == 5
    with pytest.raises(SettingsError, match=key):
        Settings.from_env({**base, key: "soon"})
