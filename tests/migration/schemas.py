"""Every schema declaration in the code, merged: what the migrations must add up to."""

from __future__ import annotations

import importlib

MODULES = ["eventstore.schema", "projections.schema", "projections.document", "jacameno.schema"]


def expected(kind: str) -> tuple[dict[str, dict[str, str]], dict[str, list[tuple[str, ...]]]]:
    tables: dict[str, dict[str, str]] = {}
    unique: dict[str, list[tuple[str, ...]]] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        declared = getattr(module, kind.upper())
        overlap = set(declared) & set(tables)
        assert not overlap, f"{name} declares tables declared elsewhere: {overlap}"
        tables.update(declared)
        for table, keys in getattr(module, "UNIQUE", {}).items():
            unique.setdefault(table, []).extend(keys)
    return tables, unique
