"""Audio assets: what was uploaded to a project, as its stream records it.

On a project's stream (jacameno.assets; data is a JSON object, metadata carries the acting
`user_id`):

    asset.uploaded   {"asset_id", "project_id", "user_id", "sha256", "size", "content_type",
                      "format", "sample_rate", "channels", "frames", "duration", "name"}
                     the bytes are in storage under their SHA-256 (the same content uploaded
                     twice is stored once; each upload is still its own asset)
    asset.deleted    {"asset_id"}   the asset is gone from the project (its bytes stay while
                                    another asset has the same content)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from eventstore import NewEvent

ASSET_UPLOADED = "asset.uploaded"
ASSET_DELETED = "asset.deleted"
ASSET_EVENT_TYPES = frozenset({ASSET_UPLOADED, ASSET_DELETED})


@dataclass(frozen=True, slots=True)
class UploadedAsset:
    """One uploaded asset: where it lives (its project), who uploaded it, its content (hash,
    size) and what the audio header said (format, sample rate, channels, frames, duration in
    seconds)."""

    asset_id: str
    project_id: str
    user_id: str
    sha256: str
    size: int
    content_type: str
    format: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    name: str


def asset_uploaded(asset: UploadedAsset) -> NewEvent:
    data = json.dumps(asdict(asset), separators=(",", ":"), ensure_ascii=False).encode()
    return NewEvent(ASSET_UPLOADED, data, {"user_id": asset.user_id})


def read_asset_uploaded(data: bytes) -> UploadedAsset:
    """The asset an `asset.uploaded` event records (ValueError: not one)."""
    fields: Any = json.loads(data)
    try:
        return UploadedAsset(**fields)
    except TypeError as exc:
        raise ValueError(f"not an asset.uploaded payload: {exc}") from exc


def asset_deleted(asset_id: str, *, user_id: str) -> NewEvent:
    data = json.dumps({"asset_id": asset_id}, separators=(",", ":")).encode()
    return NewEvent(ASSET_DELETED, data, {"user_id": user_id})


def read_asset_deleted(data: bytes) -> str:
    """The id of the asset an `asset.deleted` event removes (ValueError: not one)."""
    fields: Any = json.loads(data)
    if not isinstance(fields, dict) or not isinstance(fields.get("asset_id"), str):
        raise ValueError("not an asset.deleted payload")
    return str(fields["asset_id"])
