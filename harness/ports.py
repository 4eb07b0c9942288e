"""TCP ports on this machine: a free one to start a server on, and whether one answers."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tcp_buffered() -> int:
    """The most a TCP connection's two ends buffer: the sender's send buffer and the receiver's
    receive buffer at their largest (Linux's tcp_wmem and tcp_rmem maxima; 4 + 6 MiB by
    default, 4 + 32 on some machines). What a client pushes into a socket the server has stopped
    reading is bounded by this, not by what the server read."""
    most = 0
    for name in ("tcp_wmem", "tcp_rmem"):
        try:
            most += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            most += 8 * 1024 * 1024
    return most
