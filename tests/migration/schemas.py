"""Every schema declaration in the code, merged: what the migrations must add up to (the
application's tables), and the read models' tables the projection runner creates."""

from __future__ import annotations

import importlib

from projections.registry import TABLES
from projections.tables import Table

MODULES = ["eventstore.schema", "projections.schema", "jacameno.schema"]

# The read-model tables that migrations 0004 and 0007 made, before the runner made them.
MIGRATED_READ_MODELS = {
    "projects",
    "project_members",
    "doc_projects",
    "doc_tracks",
    "doc_clips",
    "doc_comments",
    "doc_markers",
}


def expected(kind: str) -> tuple[dict[str, dict[str, str]], dict[str, list[tuple[str, ...]]]]:
    tables: dict[str, dict[str, str]] = {}
    unique: dict[str, list[tuple[str, ...]]] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        declared = getattr(module, kind.upper())
        overlap = set(declared) & set(tables)
        assert not overlap, f"{name} declares tables declared elsewhere: {overlap}"
        tables.update(declared)
        for table, keys in getattr(module, "UNIQUE", {}).items():
            unique.setdefault(table, []).extend(keys)
    return tables, unique


def read_model_tables() -> list[Table]:
    return list(TABLES)
