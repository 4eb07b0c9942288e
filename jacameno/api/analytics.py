"""`/api/projects/{id}/analytics` (owners and editors) and `/api/me/analytics` (the caller's own
activity): edits, bytes, sessions and collaborators per hour or day, from the `analytics` read
model (projections/analytics.py) only, so they trail the log by the projection's lag.

`from` and `to` are ISO 8601 dates or date-times (UTC when they give no offset); the answer
covers the whole buckets (UTC hours or days) that hold [from, to). Anything else is a 400 that
says which parameter is wrong and why (docs/api.md, "Analytics")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.responses import JSONResponse, Response

from domain.roles import can_write
from jacameno.api.projects import member_role
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation, Query
from jacameno.http.errors import ApiError, forbidden
from projections.analytics import GRANULARITIES, AnalyticsReadModel, Granularity, Window
from projections.projects import ProjectsReadModel

DEFAULT_GRANULARITY: Granularity = "day"
DEFAULT_SPAN = timedelta(days=7)
MAX_BUCKETS: dict[Granularity, int] = {"hour": 31 * 24, "day": 366}


@dataclass(frozen=True, slots=True)
class AnalyticsServices:
    """What the analytics routes need: the members' roles and the analytics read model."""

    projects: ProjectsReadModel
    analytics: AnalyticsReadModel


AnalyticsCall = Call[AnalyticsServices]


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, [name])


def _moment(call: AnalyticsCall, name: str) -> datetime | None:
    text = call.query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _invalid(
            name, f"{name} must be an ISO 8601 date or date-time, like 2026-11-02T10:00:00Z"
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def window(call: AnalyticsCall) -> Window:
    """The window the query asks for: `to` (default now), `from` (default 7 days before `to`),
    `granularity` (default day); 400 if one is malformed, `from` is after `to`, or the window
    spans more buckets than its granularity allows."""
    granularity = call.query.get("granularity", DEFAULT_GRANULARITY)
    if granularity not in GRANULARITIES:
        raise _invalid("granularity", "granularity must be hour or day")
    end = _moment(call, "to") or datetime.now(UTC)
    start = _moment(call, "from") or end - DEFAULT_SPAN
    if start > end:
        raise _invalid("from", "from must not be after to")
    span = Window.covering(_millis(start), _millis(end), granularity)
    limit = MAX_BUCKETS[granularity]
    if span.buckets > limit:
        raise _invalid(
            "to", f"at most {limit} {granularity}s per request: narrow from and to, or ask by day"
        )
    return span


def _millis(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


async def project_analytics(call: AnalyticsCall) -> Response:
    project_id, role = await member_role(call.services.projects, call)
    if not can_write(role):
        raise forbidden("a project's analytics are for its owners and editors")
    return JSONResponse(await call.services.analytics.project(project_id, window(call)))


async def my_analytics(call: AnalyticsCall) -> Response:
    return JSONResponse(await call.services.analytics.user(call.me.id, window(call)))


_WINDOW = (
    Query(
        "from",
        {"type": "string"},
        "ISO 8601 date or date-time, UTC without an offset (default: 7 days before to)",
    ),
    Query("to", {"type": "string"}, "ISO 8601 date or date-time (default: now)"),
    Query(
        "granularity",
        {"type": "string"},
        "hour (at most 744 per request) or day (at most 366; the default)",
    ),
)

OPERATIONS: list[Operation[AnalyticsServices]] = [
    Operation(
        "GET",
        "/api/projects/{project_id}/analytics",
        "project_analytics",
        "The project's edits, bytes, sessions and collaborators per hour or day, from the "
        "analytics read model (owners and editors)",
        project_analytics,
        "analytics",
        responses={200: schemas.PROJECT_ANALYTICS},
        errors=(403, 404),
        query=_WINDOW,
    ),
    Operation(
        "GET",
        "/api/me/analytics",
        "my_analytics",
        "The caller's own edits, bytes and sessions per hour or day over all their projects, "
        "from the analytics read model",
        my_analytics,
        "analytics",
        responses={200: schemas.MY_ANALYTICS},
        query=_WINDOW,
    ),
]
