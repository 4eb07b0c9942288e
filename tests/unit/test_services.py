"""The pure parts of finding test services: free ports, Postgres binaries, the mode switch."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from harness import ports
from tests import services


def make_tools(bindir: Path, tools: tuple[str, ...] = services.POSTGRES_TOOLS) -> Path:
    bindir.mkdir(parents=True)
    for tool in tools:
        path = bindir / tool
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_free_port_can_be_bound() -> None:
    port = ports.free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_binaries_on_path_win_over_versioned_roots(tmp_path: Path) -> None:
    on_path = make_tools(tmp_path / "path")
    make_tools(tmp_path / "root" / "16" / "bin")
    found = services.find_postgres_bin(path=str(on_path), roots=[tmp_path / "root"])
    assert found == on_path.resolve()


def test_newest_complete_postgres_version_is_chosen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_tools(root / "9.6" / "bin")
    newest_complete = make_tools(root / "15" / "bin")
    make_tools(root / "16" / "bin", tools=("initdb", "pg_ctl"))
    found = services.find_postgres_bin(path=str(tmp_path / "empty"), roots=[root])
    assert found == newest_complete


def test_no_postgres_binaries_is_none(tmp_path: Path) -> None:
    assert services.find_postgres_bin(path=str(tmp_path), roots=[tmp_path / "none"]) is None


def test_commands_run_as_another_user_go_through_runuser_or_setpriv() -> None:
    assert services.as_user(None, ["initdb"]) == ["initdb"]
    wrapped = services.as_user("nobody", ["initdb", "-D", "x"])
    assert wrapped[-3:] == ["initdb", "-D", "x"]
    assert Path(wrapped[0]).name in ("runuser", "setpriv")


@pytest.mark.parametrize(("value", "forced"), [("", False), ("auto", False), ("throwaway", True)])
def test_mode_switch(value: str, forced: bool) -> None:
    assert services.forced_throwaway({services.MODE_ENV: value}) is forced


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(services.ServiceUnavailable, match="expected 'auto' or 'throwaway'"):
        services.forced_throwaway({services.MODE_ENV: "docker"})
