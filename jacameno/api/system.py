"""Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from eventstore import EventStoreError
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.metrics import CONTENT_TYPE_LATEST
from projections.sql import DatabaseError


async def healthz(call: Call) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(call: Call) -> Response:
    """Readiness: the database, the event log and (when configured) Redis answer."""
    services = call.services
    checks: dict[str, Any] = {}
    ready = True
    try:
        await services.db.fetchval("SELECT 1")
        checks["database"] = {"status": "ok", "head_position": await services.store.head_position()}
    except (DatabaseError, EventStoreError) as exc:
        ready = False
        checks["database"] = {"status": "unavailable", "error": type(exc).__name__}
    if services.redis is not None:
        try:
            await services.redis.ping()
            checks["redis"] = {"status": "ok"}
        except (RedisError, OSError) as exc:
            ready = False
            checks["redis"] = {"status": "unavailable", "error": type(exc).__name__}
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def metrics(call: Call) -> Response:
    return Response(call.services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(call: Call) -> Response:
    return JSONResponse(call.request.app.state.openapi)


_READY = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "checks": {"type": "object"}},
    "required": ["status", "checks"],
}

OPERATIONS = [
    Operation(
        "GET",
        "/healthz",
        "healthz",
        "Liveness",
        healthz,
        "operations",
        responses={200: schemas.HEALTH},
        authenticated=False,
    ),
    Operation(
        "GET",
        "/readyz",
        "readyz",
        "Readiness (database, event log, Redis)",
        readyz,
        "operations",
        responses={200: _READY, 503: _READY},
        authenticated=False,
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        metrics,
        "operations",
        responses={200: {"type": "string"}},
        authenticated=False,
        media_type="text/plain",
    ),
    Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        openapi,
        "operations",
        responses={200: {"type": "object"}},
        authenticated=False,
    ),
]
