"""The one error of the settings, apart from them so that every section can raise it."""

from __future__ import annotations


class SettingsError(Exception):
    """A setting is missing or malformed, or contradicts another: the server does not start."""
