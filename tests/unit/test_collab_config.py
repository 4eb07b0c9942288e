"""The collaboration limits agree with each other and with the event store, or the server does
not start; each socket's budget of large sync answers."""

from __future__ import annotations

import pytest

from eventstore import Limits
from jacameno.collab.budget import SyncBudget
from jacameno.collab.errors import TooManyRequests
from jacameno.settings import Settings, SettingsError
from jacameno.settings.collab import MIB, CollabConfig


def test_the_defaults_agree() -> None:
    CollabConfig().check(Limits())


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OUTBOUND_BYTES": str(6 * MIB)}, "OUTBOUND_BYTES .* at least 8388608"),
        ({"MAX_MESSAGE_BYTES": str(9 * MIB)}, "OUTBOUND_BYTES .* at least"),
        (
            {"MAX_MESSAGE_BYTES": str(9 * MIB), "OUTBOUND_BYTES": str(32 * MIB)},
            "MAX_MESSAGE_BYTES .* largest event",
        ),
        ({"MAX_DOCUMENT_BYTES": str(300 * MIB)}, "MAX_DOCUMENT_BYTES .* largest snapshot"),
        ({"MAX_DOCUMENT_BYTES": str(MIB)}, "MAX_DOCUMENT_BYTES .* at least"),
        ({"MAX_TYPE_DEPTH": "1000"}, "MAX_TYPE_DEPTH"),
    ],
)
def test_contradicting_limits_are_a_settings_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({f"JACAMENO_COLLAB_{k}": v for k, v in environ.items()})


@pytest.mark.parametrize(
    ("value", "message"), [("many", "LARGE_SYNCS: not a number"), ("0", "LARGE_SYNCS must be > 0")]
)
def test_a_limit_that_is_not_a_positive_number_is_a_settings_error(
    value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"JACAMENO_COLLAB_LARGE_SYNCS": value})


def test_the_limits_are_a_section_of_the_settings() -> None:
    settings = Settings.from_env(
        {"JACAMENO_COLLAB_IDLE_TIMEOUT": "2.5", "JACAMENO_COLLAB_LARGE_SYNCS": ""}
    )
    assert settings.collab == CollabConfig(idle_timeout=2.5)


def test_limits_are_checked_against_the_store() -> None:
    with pytest.raises(SettingsError, match="largest event"):
        CollabConfig().check(Limits(max_event_bytes=MIB))


def test_a_zero_limit_is_refused_however_it_is_built() -> None:
    with pytest.raises(SettingsError, match="LARGE_SYNCS must be > 0"):
        CollabConfig(large_syncs=0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_small_sync_answers_are_free() -> None:
    budget = SyncBudget(2, 60.0, 1000, _Clock())
    for _ in range(100):
        budget.charge(999)


def test_large_sync_answers_beyond_the_burst_are_refused_until_it_refills() -> None:
    clock = _Clock()
    budget = SyncBudget(3, 60.0, 1000, clock)
    for _ in range(3):
        budget.charge(5000)
    with pytest.raises(TooManyRequests, match="more than 3 large sync answers in 60 s"):
        budget.charge(1000)
    clock.now += 20.0  # one answer's worth
    budget.charge(1000)
    with pytest.raises(TooManyRequests):
        budget.charge(1000)
    clock.now += 3600.0  # refills to the burst, no more
    for _ in range(3):
        budget.charge(1000)
    with pytest.raises(TooManyRequests):
        budget.charge(1000)
