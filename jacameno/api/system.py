"""Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from eventstore import EventStoreError
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.metrics import CONTENT_TYPE_LATEST
from sqldb import DatabaseError


async def healthz(call: Call) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(call: Call) -> Response:
    """Readiness: not ready (503) while the database or the event log fails; ready but
    `degraded` while Redis fails, since the API then counts rate limits per node and keeps
    serving (docs/operations.md, "Redis outage")."""
    services = call.services
    checks: dict[str, Any] = {}
    status = "ok"
    try:
        await services.db.fetchval("SELECT 1")
        checks["database"] = {"status": "ok", "head_position": await services.store.head_position()}
    except (DatabaseError, EventStoreError) as exc:
        status = "unavailable"
        checks["database"] = {"status": "unavailable", "error": type(exc).__name__}
    if services.redis is not None and services.redis_circuit is not None:
        try:
            await services.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            services.redis_circuit.failed(exc)
            if status == "ok":
                status = "degraded"
            checks["redis"] = {
                "status": "unavailable",
                "error": type(exc).__name__,
                "degraded": [
                    "rate limits count per node",
                    "edits reach other nodes by the periodic log check",
                ],
            }
        else:
            services.redis_circuit.succeeded()
            checks["redis"] = {"status": "ok"}
    return JSONResponse(
        {"status": status, "checks": checks},
        status_code=503 if status == "unavailable" else 200,
    )


async def metrics(call: Call) -> Response:
    return Response(call.services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(call: Call) -> Response:
    return JSONResponse(call.request.app.state.openapi)


_READY = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
        "checks": {"type": "object"},
    },
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
        "Readiness: 503 when the database or the event log fails; 200 with status `degraded`"
        " when only Redis does",
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
