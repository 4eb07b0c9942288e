"""The settings of login limits, forwarded addresses, refresh grace and Redis degradation: sane
defaults, and malformed values refused at start."""

from __future__ import annotations

import pytest

from jacameno.settings import Settings, SettingsError


def test_the_defaults_trust_no_proxy_and_keep_the_limits() -> None:
    settings = Settings.from_env({})
    assert settings.trusted_proxies == ()
    assert (settings.auth_rate_limit, settings.auth_account_rate_limit) == (10, 5)
    assert settings.refresh_grace_seconds == 10
    assert (settings.redis_timeout_ms, settings.redis_retry_seconds) == (500, 2)


def test_trusted_proxies_are_addresses_and_networks() -> None:
    settings = Settings.from_env({"JACAMENO_TRUSTED_PROXIES": " 10.1.2.3/8, ::1 ,192.0.2.7"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1", "192.0.2.7")


@pytest.mark.parametrize("value", ["*", "proxy.local", "10.0.0.0/33", "1.2.3"])
def test_anything_else_as_a_trusted_proxy_is_an_error(value: str) -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        Settings.from_env({"JACAMENO_TRUSTED_PROXIES": value})


def test_the_refresh_grace_can_be_turned_off() -> None:
    assert Settings.from_env({"JACAMENO_REFRESH_GRACE_SECONDS": "0"}).refresh_grace_seconds == 0
