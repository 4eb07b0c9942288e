"""Catalog events at chosen moments, for the catalog fold's tests and the analysts' doc test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from domain.events import catalog as ev
from eventstore import NewEvent, RecordedEvent
from tests.integration.projections.activity import moment

PROJECT = "p1"


@dataclass
class CatalogLog:
    """Catalog events at chosen moments (epoch ms), in log order."""

    recorded: list[RecordedEvent] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def add(self, stream: str, at: int, event: NewEvent) -> None:
        self.versions[stream] = version = self.versions.get(stream, 0) + 1
        self.recorded.append(
            RecordedEvent(
                position=len(self.recorded) + 1,
                stream=stream,
                version=version,
                type=event.type,
                data=event.data,
                metadata_json=json.dumps(event.metadata),
                recorded_at=moment(at),
            )
        )

    def publish(self, track: str, at: int, title: str = "Song", **extra: Any) -> None:
        fields: dict[str, Any] = {
            "track_id": track,
            "project_id": PROJECT,
            "asset_id": "a1",
            "user_id": "u1",
            "title": title,
            "artists": ["Ana"],
            "genre": "Jazz",
            "visibility": "public",
            "description": None,
            "cover_asset_id": None,
            "duration": 1.0,
            "format": "WAV",
        } | extra
        self.add(ev.track_stream(track), at, ev.track_published(ev.PublishedTrack(**fields)))

    def play(self, track: str, who: str, at: int) -> None:
        self.add(ev.track_stream(track), at, ev.track_played(who, actor=None))

    def track_event(self, track: str, kind: str, at: int, **data: Any) -> None:
        self.add(ev.track_stream(track), at, ev.event(kind, data, actor="u1"))
