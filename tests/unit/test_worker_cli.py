from pathlib import Path

import pytest

from jacameno.worker_cli import AlreadyRunning, sqlite_turn


def test_one_worker_per_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "jacameno.db"
    with (
        sqlite_turn(database),
        pytest.raises(AlreadyRunning, match="another worker"),
        sqlite_turn(database),
    ):
        pass
    with sqlite_turn(database):  # the turn passes on once the holder lets go
        pass
