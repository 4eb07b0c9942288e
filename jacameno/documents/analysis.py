"""AI analyses into the documents: each `ai.analysis_completed` becomes the `analysis` map of every
track whose clips play the analysed asset, written by ONE server-side edit through the live room
(`LiveDocuments`: appended as the AI service user's `doc.updated` with `via: "ai"`, broadcast to
every socket on every node), so collaborators see it appear and history names it.

It runs as the `ai_results` projection (the runner: one active across the nodes, a checkpoint, a
retried batch while the room or the log is unavailable; an analysis that cannot be written for
another reason is logged and passed). The edit happens before the runner's transaction
(`prepare`): the room appends to the same database. It is idempotent: a track takes an analysis
only if the analysis it holds came from an earlier log position (`position`), so a result applied
twice, or an old one applied again after a newer analysis, changes nothing."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from pycrdt import Array, Doc, Map

from domain.events import is_project_stream, project_of
from domain.events import jobs as events
from eventstore import EventStoreError, RecordedEvent
from jacameno.collab.errors import RoomUnavailable
from jacameno.collab.room import Actor
from jacameno.documents.service import LiveDocuments
from projections.projection import Projection
from projections.tables import Names
from sqldb import Connection

logger = logging.getLogger(__name__)

RESULTS = "ai_results"

# What of an analysis goes into the document (the rest stays in the job's result): the figures a
# studio shows beside a track.
SUMMARY = (
    ("tempo_bpm", ("tempo", "bpm")),
    ("tempo_confidence", ("tempo", "confidence")),
    ("key", ("key", "name")),
    ("key_confidence", ("key", "confidence")),
    ("loudness_lufs", ("loudness", "integrated")),
    ("loudness_range_lu", ("loudness", "range")),
    ("true_peak_dbtp", ("true_peak",)),
    ("duration", ("duration",)),
)


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def summary(result: dict[str, Any], *, asset_id: str, job_id: str, position: int) -> dict[str, Any]:
    """The `analysis` map a track takes from a job's result."""
    found = {name: _dig(result, path) for name, path in SUMMARY}
    kept = {name: value for name, value in found.items() if value is not None}
    return kept | {"asset_id": asset_id, "job_id": job_id, "position": position}


def _plays(track: Map[Any], asset_id: str) -> bool:
    clips = track.get("clips")
    if not isinstance(clips, Array):
        return False
    return any(isinstance(c, Map) and c.get("asset_id") == asset_id for c in clips)


def set_analysis(doc: Doc[Any], asset_id: str, analysis: dict[str, Any]) -> None:
    """Give every track that plays `asset_id` this analysis, unless it holds a later one."""
    tracks = doc.get("tracks", type=Array)
    with doc.transaction(origin="ai"):
        for track in tracks:
            if not isinstance(track, Map) or not _plays(track, asset_id):
                continue
            held = track.get("analysis")
            if isinstance(held, Map):
                position = held.get("position")
                if isinstance(position, int | float) and position >= analysis["position"]:
                    continue
            track["analysis"] = Map(analysis)


class Binding:
    """Where the edits go, known once the node's rooms exist (they are built after the runner)."""

    def __init__(self) -> None:
        self._live: LiveDocuments | None = None
        self._bound = asyncio.Event()

    def bind(self, live: LiveDocuments) -> None:
        self._live = live
        self._bound.set()

    async def live(self) -> LiveDocuments:
        await self._bound.wait()
        assert self._live is not None
        return self._live


class _Fold:
    def __init__(self, binding: Binding) -> None:
        self._binding = binding

    async def prepare(self, batch: list[RecordedEvent]) -> None:
        for event in batch:
            if event.type != events.ANALYSIS_COMPLETED or not is_project_stream(event.stream):
                continue
            data = events.read_job_event(event.data)
            result, asset_id = data.get("result"), data.get("asset_id")
            if not isinstance(result, dict) or not isinstance(asset_id, str):
                continue
            analysis = summary(
                result, asset_id=asset_id, job_id=data["job_id"], position=event.position
            )
            change = functools.partial(set_analysis, asset_id=asset_id, analysis=analysis)
            live = await self._binding.live()
            actor = Actor(events.AI_USER_ID, "ai", {"job_id": data["job_id"]})
            try:
                await live.edit(project_of(event.stream), change, actor)
            except (RoomUnavailable, EventStoreError):
                raise  # passes: the runner tries the batch again
            except Exception:
                # This one analysis cannot be written (a document the room refuses, say): it
                # stays in the job's result and the log; the next ones are not held up.
                logger.exception(
                    "an analysis could not be written into its document",
                    extra={
                        "action": "ai.result_unwritten",
                        "project": project_of(event.stream),
                        "position": event.position,
                    },
                )

    async def apply(self, conn: Connection, batch: list[RecordedEvent]) -> None:
        """Nothing to write: the edits were made in `prepare` (the runner always prepares)."""


def results_projection(binding: Binding) -> Projection:
    def fold(names: Names) -> _Fold:
        return _Fold(binding)

    return Projection(name=RESULTS, event_types=frozenset({events.ANALYSIS_COMPLETED}), fold=fold)
