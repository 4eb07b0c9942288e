"""Limits and timings of live collaboration, read once from `JACAMENO_COLLAB_*` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from jacameno.settings import SettingsError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CollabConfig:
    max_message_bytes: int = 4 * MIB  # one frame; larger closes with 1009
    max_document_bytes: int = 64 * MIB  # encoded size of a project document; over it: 1009
    outbound_messages: int = 2048  # frames queued for one socket; over it the socket gets 1013
    outbound_bytes: int = 16 * MIB
    idle_timeout: float = 120.0  # seconds without any frame from the client (they renew awareness
    # every 15 s); protocol-level pings are uvicorn's (ws_ping_interval)
    close_timeout: float = 10.0  # how long a close may wait behind a socket that does not read
    unload_delay: float = 30.0  # seconds a room stays loaded after its last socket left
    # how long closing a room (unload, shutdown) waits for its writes and last snapshot; then
    # they are abandoned, so a hung database cannot hang the server's shutdown
    drain_timeout: float = 10.0
    snapshot_every_updates: int = 1000
    # each room's snapshot point varies by this fraction, so rooms do not all fold at once
    snapshot_jitter: float = 0.25
    snapshot_every_bytes: int = 4 * MIB
    # seconds a room's write to the log (or catch-up read) may take; then the log counts as
    # unavailable: the room fails (1013) so that its clients move to a node that can write
    append_timeout: float = 5.0
    max_pending_writes: int = 2000  # per room; the sockets' reads wait while more are unlogged
    awareness_clients_per_socket: int = 16
    offload_bytes: int = 16 * 1024  # updates larger than this are checked in a worker thread
    # Membership changes are found by following the log; while it is busy, reads are spaced this
    # many seconds apart (a command waiting for a change skips the wait).
    follow_interval: float = 0.05
    # Several nodes (a Redis bus): each loaded room reads the tail of its stream this often, in
    # case messages were lost on the bus; and reconnections to Redis back off up to this.
    log_check_interval: float = 5.0
    bus_max_backoff: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CollabConfig:
        env = os.environ if environ is None else environ
        values: dict[str, int | float] = {}
        for field in fields(cls):
            text = env.get(f"JACAMENO_COLLAB_{field.name.upper()}")
            if not text:
                continue
            try:
                value = float(text) if field.type == "float" else int(text)
            except ValueError as exc:
                raise SettingsError(f"JACAMENO_COLLAB_{field.name.upper()}: not a number") from exc
            if value <= 0:
                raise SettingsError(f"JACAMENO_COLLAB_{field.name.upper()} must be > 0")
            values[field.name] = value
        return cls(**values)  # type: ignore[arg-type]
