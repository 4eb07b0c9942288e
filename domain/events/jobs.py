"""AI jobs: what was asked of the AI services and what they answered, on the project's stream.

On a project's stream (data is a JSON object; metadata carries the acting `user_id`: the
requester, or the AI service user `AI_USER_ID` for what a worker records):

    ai.job_requested      {"job_id", "kind", "asset_id", "params"}     (jacameno.jobs, the API)
    ai.job_started        {"job_id", "attempt", "worker"}              a worker claimed it
    ai.analysis_completed {"job_id", "attempt", "asset_id", "result"}
    ai.mastering_completed {"job_id", "attempt", "asset_id", "result", "output_asset_id"}
    ai.job_failed         {"job_id", "attempt", "error", "final"}      final: no retry follows
    ai.job_cancelled      {"job_id"}

An `asset.uploaded` of audio queues an analysis by itself: its job id is `analysis_job_id(asset)`,
the same on every fold of the log. A job ends once: its result (a completion, or a final
failure) and its cancel all carry the idempotency key `result_key(job_id)`, so the first of them
appended is the job's end, on every backend and however close they come: a retried attempt that
finishes after an earlier one did leaves the log unchanged, a result after a cancel is refused
(IdempotencyError: the worker drops it), and so is a cancel after a result (the API answers that
the job ended).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from eventstore import NewEvent

JOB_REQUESTED = "ai.job_requested"
JOB_STARTED = "ai.job_started"
ANALYSIS_COMPLETED = "ai.analysis_completed"
MASTERING_COMPLETED = "ai.mastering_completed"
JOB_FAILED = "ai.job_failed"
JOB_CANCELLED = "ai.job_cancelled"
JOB_EVENT_TYPES = frozenset(
    {
        JOB_REQUESTED,
        JOB_STARTED,
        ANALYSIS_COMPLETED,
        MASTERING_COMPLETED,
        JOB_FAILED,
        JOB_CANCELLED,
    }
)
COMPLETED = {"analysis": ANALYSIS_COMPLETED, "mastering": MASTERING_COMPLETED}

Kind = Literal["analysis", "mastering"]
KINDS: tuple[Kind, ...] = ("analysis", "mastering")

# Who a worker's events (and its edits of documents) are attributed to.
AI_USER_ID = "jacameno-ai"

_NAMESPACE = uuid.UUID("6f1d4a3e-9a52-4c43-9d4e-6a2a4f6b1c0e")


def analysis_job_id(asset_id: str) -> str:
    """The id of the analysis an upload of `asset_id` queues (the same on every fold)."""
    return str(uuid.uuid5(_NAMESPACE, f"analysis:{asset_id}"))


def result_key(job_id: str) -> str:
    """The idempotency key of a job's one end (completed, finally failed, or cancelled)."""
    return f"ai-job-result:{job_id}"


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _object(data: bytes) -> dict[str, Any]:
    fields: Any = json.loads(data)
    if not isinstance(fields, dict) or not isinstance(fields.get("job_id"), str):
        raise ValueError("not an AI job payload")
    return fields


@dataclass(frozen=True, slots=True)
class JobRequest:
    job_id: str
    kind: Kind
    asset_id: str
    params: dict[str, Any] = field(default_factory=dict)


def job_requested(request: JobRequest, *, user_id: str) -> NewEvent:
    return NewEvent(JOB_REQUESTED, _encode(asdict(request)), {"user_id": user_id})


def read_job_requested(data: bytes) -> JobRequest:
    """The request an `ai.job_requested` records (ValueError: not one)."""
    fields = _object(data)
    kind, asset, params = fields.get("kind"), fields.get("asset_id"), fields.get("params", {})
    if kind not in KINDS or not isinstance(asset, str) or not isinstance(params, dict):
        raise ValueError("not an ai.job_requested payload")
    return JobRequest(fields["job_id"], kind, asset, params)


def job_started(job_id: str, *, attempt: int, worker: str) -> NewEvent:
    data = _encode({"job_id": job_id, "attempt": attempt, "worker": worker})
    return NewEvent(JOB_STARTED, data, {"user_id": AI_USER_ID}, f"ai-job-start:{job_id}:{attempt}")


def job_completed(
    kind: Kind,
    job_id: str,
    *,
    attempt: int,
    asset_id: str,
    result: dict[str, Any],
    output_asset_id: str | None = None,
) -> NewEvent:
    data: dict[str, Any] = {
        "job_id": job_id,
        "attempt": attempt,
        "asset_id": asset_id,
        "result": result,
    }
    if output_asset_id is not None:
        data["output_asset_id"] = output_asset_id
    return NewEvent(COMPLETED[kind], _encode(data), {"user_id": AI_USER_ID}, result_key(job_id))


def job_failed(job_id: str, *, attempt: int, error: str, final: bool) -> NewEvent:
    """A failed attempt; `final` when no retry follows (then the job's one result)."""
    data = _encode({"job_id": job_id, "attempt": attempt, "error": error, "final": final})
    key = result_key(job_id) if final else f"ai-job-failed:{job_id}:{attempt}"
    return NewEvent(JOB_FAILED, data, {"user_id": AI_USER_ID}, key)


def job_cancelled(job_id: str, *, user_id: str) -> NewEvent:
    """A cancel: the job's end, unless it has one already (then IdempotencyError); a second
    cancel repeats the first."""
    data = _encode({"job_id": job_id})
    return NewEvent(JOB_CANCELLED, data, {"user_id": user_id}, result_key(job_id))


def read_job_event(data: bytes) -> dict[str, Any]:
    """The payload of any AI job event: a JSON object with a `job_id` (ValueError otherwise)."""
    return _object(data)
