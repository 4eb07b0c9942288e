"""Reading a settings section of positive numbers (`collab`, `ai`) from `JACAMENO_<PREFIX>_*`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from jacameno.settings.errors import SettingsError


def positive_numbers(section: Any, prefix: str, get: Callable[[str], str | None]) -> dict[str, Any]:
    """The values `get` (a `JACAMENO_` variable by the rest of its name, None if unset or empty)
    gives for the fields of the dataclass `section`, each under `<PREFIX>_<FIELD>`; fields left
    unset keep their defaults. SettingsError for a value that is not a positive number."""
    values: dict[str, int | float] = {}
    for field in fields(section):
        name = f"{prefix}_{field.name.upper()}"
        text = get(name)
        if text is None:
            continue
        try:
            # The default's type, not the annotation's text (a string under PEP 563).
            value = float(text) if isinstance(field.default, float) else int(text)
        except ValueError as exc:
            raise SettingsError(f"JACAMENO_{name}: not a number") from exc
        if value <= 0:
            raise SettingsError(f"JACAMENO_{name} must be > 0")
        values[field.name] = value
    return values
