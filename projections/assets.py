"""The assets read model, in one module: the `assets` table, the fold that keeps it from the
projects' streams (`assets_projection`), and its queries (`AssetsReadModel`: one asset, a
project's assets newest first). A deleted asset keeps its row, marked deleted: the log keeps
everything, and the bytes may still serve other assets.

Its events are listed in domain.events.assets (asset.uploaded, asset.deleted)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from domain.events import is_project_stream, project_of
from domain.events.assets import (
    ASSET_DELETED,
    ASSET_EVENT_TYPES,
    ASSET_UPLOADED,
    UploadedAsset,
    read_asset_deleted,
    read_asset_uploaded,
)
from eventstore import RecordedEvent
from projections.runner import Apply, Projection
from projections.tables import Names, Table, fetch_where_in
from sqldb import Connection, Database, Row

ASSETS = "assets"

_COLUMNS = (
    "asset_id",
    "project_id",
    "user_id",
    "sha256",
    "size",
    "content_type",
    "format",
    "sample_rate",
    "channels",
    "frames",
    "duration",
    "name",
)


@dataclass(frozen=True, slots=True)
class AssetView:
    """An asset as the read model holds it: what its upload recorded, when (ms since the
    epoch), and the stream version of that upload."""

    asset: UploadedAsset
    created_at: int
    version: int

    def public(self) -> dict[str, Any]:
        fields = asdict(self.asset)
        fields["id"] = fields.pop("asset_id")
        return {**fields, "created_at": self.created_at}


def _view(row: Row) -> AssetView:
    values = {c: row[c] for c in _COLUMNS}
    for column in ("size", "sample_rate", "channels", "frames"):
        values[column] = int(values[column])
    values["duration"] = float(values["duration"])
    return AssetView(UploadedAsset(**values), int(row["created_at"]), int(row["version"]))


_SELECT = f"SELECT {', '.join(_COLUMNS)}, created_at, version FROM assets"


class AssetsReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def asset(self, asset_id: str) -> AssetView | None:
        """The live (not deleted) asset `asset_id`, of whichever project."""
        row = await self._db.fetchrow(
            f"{_SELECT} WHERE asset_id = $1 AND deleted_at IS NULL", asset_id
        )
        return None if row is None else _view(row)

    async def known(self, asset_ids: Sequence[str]) -> set[str]:
        """Which of `asset_ids` the read model has applied (deleted since or not)."""
        rows = await fetch_where_in(
            self._db, "SELECT asset_id FROM assets WHERE asset_id IN ({marks})", asset_ids
        )
        return {str(r["asset_id"]) for r in rows}

    async def of_project(self, project_id: str) -> list[AssetView]:
        """The project's live assets, newest first."""
        rows = await self._db.fetch(
            f"{_SELECT} WHERE project_id = $1 AND deleted_at IS NULL"
            " ORDER BY created_at DESC, asset_id DESC",
            project_id,
        )
        return [_view(r) for r in rows]


# -- the fold ----------------------------------------------------------------------------


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


async def _apply_one(conn: Connection, table: str, event: RecordedEvent) -> None:
    if event.type == ASSET_UPLOADED:
        asset = read_asset_uploaded(event.data)
        values = [getattr(asset, c) for c in _COLUMNS]
        # The project is the stream's, whatever the payload says.
        values[1] = project_of(event.stream)
        marks = ", ".join(f"${i + 1}" for i in range(len(_COLUMNS) + 2))
        await conn.execute(
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}, created_at, version)"
            f" VALUES ({marks}) ON CONFLICT (asset_id) DO NOTHING",
            *values,
            _millis(event),
            event.version,
        )
    elif event.type == ASSET_DELETED:
        await conn.execute(
            f"UPDATE {table} SET deleted_at = $3 WHERE asset_id = $1 AND project_id = $2",
            read_asset_deleted(event.data),
            project_of(event.stream),
            _millis(event),
        )


def fold(names: Names) -> Apply:
    """The fold into the table `names` gives (the live one, or its rebuild twin). Uploads are
    few next to document edits: one statement each."""

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        for event in events:
            if is_project_stream(event.stream):
                await _apply_one(conn, names["assets"], event)

    return apply


TABLES = (
    Table(
        "assets",
        {
            "asset_id": "text not null",
            "project_id": "text not null",
            "user_id": "text not null",
            "sha256": "text not null",
            "size": "bigint not null",
            "content_type": "text not null",
            "format": "text not null",
            "sample_rate": "bigint not null",
            "channels": "bigint not null",
            "frames": "bigint not null",
            "duration": "double not null",
            "name": "text not null",
            "created_at": "bigint not null",
            "version": "bigint not null",  # the stream version of the upload
            "deleted_at": "bigint",
        },
        key=("asset_id",),
        indexes=[("project_id", "created_at"), ("sha256",)],
    ),
)


def assets_projection() -> Projection:
    return Projection(name=ASSETS, event_types=ASSET_EVENT_TYPES, fold=fold, tables=TABLES)
