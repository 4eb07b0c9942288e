"""`/api/admin/...`: what an operator does over HTTP instead of a shell, for the accounts named in
JACAMENO_ADMIN_EMAILS (everyone else: 403). The projections' status, including rebuilds under
way on any node, and starting a rebuild of a read model on this node (projections/rebuild.py),
which runs in the background until it ends or the server stops: its progress shows in the
status as `<name>__rebuild`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.http.errors import conflict, forbidden, not_found
from projections.lag import ProjectionStatus
from projections.runner import ProjectionRunner, RebuildRunning


@dataclass(frozen=True, slots=True)
class AdminServices:
    runner: ProjectionRunner
    admins: frozenset[str]


AdminCall = Call[AdminServices]


def _admin(call: AdminCall) -> None:
    if call.me.email.lower() not in call.services.admins:
        raise forbidden("only the server's administrators (JACAMENO_ADMIN_EMAILS) may do this")


def public(status: ProjectionStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "state": status.state,
        "position": status.position,
        "head": status.head,
        "lag_positions": status.lag_positions,
        "seconds_behind": status.seconds_behind,
        "events_per_second": status.events_per_second,
        "failures": status.failures,
        "last_error": status.last_error,
        "failing_since": None if status.failing_since is None else status.failing_since.isoformat(),
    }


async def list_projections(call: AdminCall) -> Response:
    _admin(call)
    statuses = await call.services.runner.status(rebuilds=True)
    return JSONResponse({"projections": [public(s) for s in statuses]})


async def rebuild_projection(call: AdminCall) -> Response:
    _admin(call)
    name = call.path("name")
    try:
        await call.services.runner.rebuild_in_background(name)
    except KeyError:
        raise not_found("projection") from None
    except RebuildRunning:
        raise conflict("rebuild_running", f"a rebuild of {name!r} is already running") from None
    return JSONResponse({"projection": name, "state": "rebuilding"}, status_code=202)


OPERATIONS: list[Operation[AdminServices]] = [
    Operation(
        "GET",
        "/api/admin/projections",
        "list_projections",
        "Each projection's position, lag, apply rate, failures and state, and the rebuilds "
        "under way on any node (administrators)",
        list_projections,
        "admin",
        responses={200: schemas.PROJECTION_STATUSES},
        errors=(403,),
    ),
    Operation(
        "POST",
        "/api/admin/projections/{name}/rebuild",
        "rebuild_projection",
        "Rebuild a read model from the log beside the live one, then swap it in; runs in the "
        "background on this node (administrators)",
        rebuild_projection,
        "admin",
        responses={202: schemas.REBUILD_STARTED},
        errors=(403, 404, 409),
    ),
]
