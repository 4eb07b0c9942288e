"""JACAMENO_PROJECTIONS and `jacameno projections run`: who folds the log is checked at start,
and a layout where two processes could both fold it, or where a projection process's AI edits
could not reach the serving nodes, is refused with a message that says what to do."""

from __future__ import annotations

import pytest

from jacameno import cli
from jacameno.settings import Settings, SettingsError

POSTGRES = "postgresql://postgres@127.0.0.1:5432/nowhere"


def settings(**values: str) -> Settings:
    return Settings.from_env({f"JACAMENO_{k.upper()}": v for k, v in values.items()})


def test_a_server_runs_its_projections_unless_told_to_stand_by() -> None:
    assert settings().projections == "run"
    assert settings(database_url=POSTGRES, projections="standby").projections == "standby"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(SettingsError, match="JACAMENO_PROJECTIONS must be run or standby"):
        settings(database_url=POSTGRES, projections="elsewhere")


def test_standby_is_refused_on_sqlite() -> None:
    with pytest.raises(SettingsError, match="standby needs Postgres"):
        settings(database_url="sqlite:///studio.db", projections="standby")


def test_a_projection_process_is_refused_on_sqlite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JACAMENO_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert cli.main(["projections", "run", "--database-url", "sqlite:///studio.db"]) == 2
    assert "`projections run` needs Postgres" in capsys.readouterr().err


def test_a_projection_process_is_refused_without_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JACAMENO_REDIS_URL", raising=False)
    assert cli.main(["projections", "--database-url", POSTGRES, "run"]) == 2
    assert "`projections run` needs JACAMENO_REDIS_URL" in capsys.readouterr().err


def test_a_bad_mode_stops_the_command_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JACAMENO_PROJECTIONS", "sometimes")
    assert cli.main(["projections", "--database-url", POSTGRES, "status"]) == 2
    assert "JACAMENO_PROJECTIONS must be run or standby, not 'sometimes'" in capsys.readouterr().err


def test_the_lull_of_a_following_projection_is_a_setting_in_milliseconds() -> None:
    assert settings().projections_lull_ms == 50  # SQLite: the embedded default
    assert settings(database_url=POSTGRES).projections_lull_ms == 250
    assert settings(projections_lull_ms="0").projections_lull_ms == 0
    assert settings(projections_lull_ms="50").projections_lull_ms == 50
    for bad in ("-5", "0.25", "soon"):
        with pytest.raises(SettingsError, match="JACAMENO_PROJECTIONS_LULL_MS must be an integer"):
            settings(projections_lull_ms=bad)
