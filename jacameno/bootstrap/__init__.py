"""The composition root: small builders, each building one thing from the settings (an async
context manager when it has something to close), and their compositions. `core` (the log, the
tables, the projection runner) is what every command shares; `services` adds what `jacameno
serve` runs. Nothing is built at import time, and nothing but these builders picks a backend.
docs/architecture.md, "The composition root", shows where each thing is built."""

from __future__ import annotations

from jacameno.bootstrap.core import Core, core
from jacameno.bootstrap.serving import Identity, Live, RedisLink, Services, services

__all__ = ["Core", "Identity", "Live", "RedisLink", "Services", "core", "services"]
