"""How hard the property-based tests search, as Hypothesis profiles.

Under the default profile (`make test`, CI) each test draws the number of examples it names with
`examples(n)`: enough to meet every case it exists for in one run of the whole suite. The `deep`
profile (`pytest --hypothesis-profile=deep`, for a long search after a change to the CRDT
checks, the log or the API) draws ten times as many. tests/conftest.py calls `register` before
pytest loads a profile."""

from __future__ import annotations

from hypothesis import settings

DEEP_FACTOR = 10
_BASE = settings.get_profile("default").max_examples


def register() -> None:
    """Make `deep` a profile that `--hypothesis-profile` can name."""
    settings.register_profile("deep", max_examples=_BASE * DEEP_FACTOR)


def examples(count: int) -> int:
    """`count` under the default profile, scaled as the loaded profile scales max_examples (call
    it where the test is defined: the profile is loaded before tests are collected)."""
    return max(1, count * settings().max_examples // _BASE)
