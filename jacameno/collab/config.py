"""The limits and timings of live collaboration, as the collaboration modules import them. They
are a section of the settings, read once with them (jacameno.settings.collab)."""

from __future__ import annotations

from jacameno.settings.collab import MAX_TYPE_DEPTH, MIB, CollabConfig

__all__ = ["MAX_TYPE_DEPTH", "MIB", "CollabConfig"]
