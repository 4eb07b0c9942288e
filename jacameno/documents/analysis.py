"""AI analyses into the documents: each `ai.analysis_completed` becomes the `analysis` map of every
track whose clips play the analysed asset, written by ONE server-side edit through the live room
(`LiveDocuments`: appended as the AI service user's `doc.updated` with `via: "ai"`, broadcast to
every socket on every node), so collaborators see it appear and history names it. A clip that
starts playing an analysed asset later (dragged onto a track after the analysis finished) brings
the analysis to its track the same way: the projection keeps each project's latest analysis per
asset (`ai_results_analyses`) and looks for those assets' ids in every later edit.

It runs as the `ai_results` projection (the runner: one active across the nodes, a checkpoint, a
retried batch while the room or the log is unavailable; an analysis that cannot be written for
another reason is logged and passed). The edit happens before the runner's transaction
(`prepare`): the room appends to the same database. It is idempotent: a track takes an analysis
only if the analysis it holds came from an earlier log position (`position`), so a result applied
twice, or an old one applied again after a newer analysis, changes nothing."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from typing import Any

from pycrdt import Array, Doc, Map

from domain.events import DOC_UPDATED, is_project_stream, project_of
from domain.events import jobs as events
from eventstore import EventStoreError, RecordedEvent
from jacameno.collab.errors import RoomUnavailable
from jacameno.collab.room import Actor
from jacameno.documents.service import LiveDocuments
from projections.projection import Projection
from projections.tables import Names, Table, fetch_where_in, insert_rows
from sqldb import Connection, Database

logger = logging.getLogger(__name__)

RESULTS = "ai_results"
ANALYSES = "ai_results_analyses"

TABLES = (
    Table(
        ANALYSES,
        {
            "project_id": "text not null",
            "asset_id": "text not null",
            "position": "bigint not null",  # of the `ai.analysis_completed`
            "analysis": "text not null",  # JSON: the `analysis` map a track takes (`summary`)
        },
        key=("project_id", "asset_id"),
    ),
)

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


# An asset id as an update spells it (jacameno.assets: `str(uuid.uuid4())`).
_SPELLS_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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
    set_analyses(doc, {asset_id: analysis})


def set_analyses(doc: Doc[Any], analyses: dict[str, dict[str, Any]]) -> None:
    """`set_analysis` for each asset of `analyses` (asset id to analysis), in one transaction."""
    tracks = doc.get("tracks", type=Array)
    with doc.transaction(origin="ai"):
        for asset_id, analysis in analyses.items():
            for track in tracks:
                if not isinstance(track, Map) or not _plays(track, asset_id):
                    continue
                held = track.get("analysis")
                if isinstance(held, Map):
                    position = held.get("position")
                    if isinstance(position, int | float) and position >= analysis["position"]:
                        continue
                track["analysis"] = Map(analysis)


def mentions(update: bytes, asset_ids: list[str]) -> list[str]:
    """The assets whose id is spelled in `update`. A clip that starts playing an asset brings
    the id as a string in the update's content (a new clip map, or its `asset_id` set), so an
    update that spells none of them cannot have made a track play one."""
    return [a for a in asset_ids if a.encode() in update]


class Binding:
    """Where the edits go, known once the node's rooms exist (they are built after the runner)."""

    def __init__(self) -> None:
        self._live: LiveDocuments | None = None
        self._db: Database | None = None
        self._bound = asyncio.Event()

    def bind(self, live: LiveDocuments, db: Database) -> None:
        self._live = live
        self._db = db
        self._bound.set()

    async def live(self) -> LiveDocuments:
        await self._bound.wait()
        assert self._live is not None
        return self._live

    async def db(self) -> Database:
        await self._bound.wait()
        assert self._db is not None
        return self._db


def _completed(event: RecordedEvent) -> tuple[str, dict[str, Any]] | None:
    """The asset and the `analysis` map of an `ai.analysis_completed`, or None if it has none."""
    data = events.read_job_event(event.data)
    result, asset_id = data.get("result"), data.get("asset_id")
    if not isinstance(result, dict) or not isinstance(asset_id, str):
        return None
    return asset_id, summary(
        result, asset_id=asset_id, job_id=data["job_id"], position=event.position
    )


class _Fold:
    def __init__(self, binding: Binding, names: Names) -> None:
        self._binding = binding
        self._table = names[ANALYSES]

    async def _known(self, batch: list[RecordedEvent]) -> dict[str, dict[str, dict[str, Any]]]:
        """The analyses the table holds of the projects whose edits in the batch spell an asset
        id (a UUID: keystrokes and fader moves, most edits, spell none and cost no query)."""
        edited = sorted(
            {
                project_of(e.stream)
                for e in batch
                if e.type == DOC_UPDATED and _SPELLS_UUID.search(e.data) is not None
            }
        )
        if not edited:
            return {}
        rows = await fetch_where_in(
            await self._binding.db(),
            f"SELECT project_id, asset_id, analysis FROM {self._table}"
            " WHERE project_id IN ({marks})",
            edited,
        )
        known: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            known.setdefault(row["project_id"], {})[row["asset_id"]] = json.loads(row["analysis"])
        return known

    async def prepare(self, batch: list[RecordedEvent]) -> None:
        batch = [e for e in batch if is_project_stream(e.stream)]
        known = await self._known(batch)
        for event in batch:
            project_id = project_of(event.stream)
            if event.type == events.ANALYSIS_COMPLETED:
                completed = _completed(event)
                if completed is None:
                    continue
                asset_id, analysis = completed
                known.setdefault(project_id, {})[asset_id] = analysis
                await self._write(event, {asset_id: analysis}, analysis["job_id"])
            elif event.metadata.get("user_id") != events.AI_USER_ID:
                analysed = known.get(project_id, {})
                found = mentions(event.data, list(analysed))
                if found:
                    await self._write(event, {a: analysed[a] for a in found}, None)

    async def _write(
        self, event: RecordedEvent, analyses: dict[str, dict[str, Any]], job_id: str | None
    ) -> None:
        """Give the event's project's tracks these analyses, as the AI service's edit."""
        project_id = project_of(event.stream)
        change = functools.partial(set_analyses, analyses=analyses)
        live = await self._binding.live()
        actor = Actor(events.AI_USER_ID, "ai", {} if job_id is None else {"job_id": job_id})
        try:
            await live.edit(project_id, change, actor)
        except (RoomUnavailable, EventStoreError):
            raise  # passes: the runner tries the batch again
        except Exception:
            # This one analysis cannot be written (a document the room refuses, say): it
            # stays in the job's result and the log; the next ones are not held up.
            logger.exception(
                "an analysis could not be written into its document",
                extra={
                    "action": "ai.result_unwritten",
                    "project": project_id,
                    "position": event.position,
                },
            )

    async def apply(self, conn: Connection, batch: list[RecordedEvent]) -> None:
        """Keep each project's latest analysis per asset (the edits were made in `prepare`:
        the runner always prepares)."""
        latest: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        for event in batch:
            if event.type != events.ANALYSIS_COMPLETED or not is_project_stream(event.stream):
                continue
            completed = _completed(event)
            if completed is not None:
                asset_id, analysis = completed
                latest[project_of(event.stream), asset_id] = (event.position, analysis)
        rows = [
            (project_id, asset_id, position, json.dumps(analysis, separators=(",", ":")))
            for (project_id, asset_id), (position, analysis) in latest.items()
        ]
        await insert_rows(
            conn,
            self._table,
            ("project_id", "asset_id", "position", "analysis"),
            rows,
            upsert=("project_id", "asset_id"),
        )


def results_projection(binding: Binding) -> Projection:
    def fold(names: Names) -> _Fold:
        return _Fold(binding, names)

    return Projection(
        name=RESULTS,
        event_types=frozenset({events.ANALYSIS_COMPLETED}),
        prepares=frozenset({DOC_UPDATED}),
        fold=fold,
        tables=TABLES,
        version=2,
    )
