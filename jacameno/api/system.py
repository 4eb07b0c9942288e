"""Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from eventstore import EventStore, EventStoreError
from jacameno.circuit import Circuit
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.metrics import CONTENT_TYPE_LATEST, Metrics
from projections.runner import ProjectionRunner
from sqldb import Database, DatabaseError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SystemServices:
    """What the operational routes look at: the backing services (Redis with the circuit the
    API's calls to it share, both None on a single node without it), the projection runner and
    the lag readiness allows it (None: any), the metrics and the OpenAPI document to serve."""

    db: Database
    store: EventStore
    redis: Redis | None
    redis_circuit: Circuit | None
    runner: ProjectionRunner
    max_projection_lag_seconds: int | None
    metrics: Metrics
    openapi: dict[str, Any]


SystemCall = Call[SystemServices]


async def healthz(call: SystemCall) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(call: SystemCall) -> Response:
    """Readiness: not ready (503) while the database or the event log fails, or a projection is
    further behind than JACAMENO_READY_MAX_PROJECTION_LAG_SECONDS allows (when set); ready but
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
    if status != "unavailable" and services.max_projection_lag_seconds is not None:
        checks["projections"] = await _projections_check(
            services, services.max_projection_lag_seconds
        )
        if checks["projections"]["status"] != "ok":
            status = "unavailable"
    return JSONResponse(
        {"status": status, "checks": checks},
        status_code=503 if status == "unavailable" else 200,
    )


async def _projections_check(services: SystemServices, max_lag: int) -> dict[str, Any]:
    lag = {s.name: s.seconds_behind for s in await services.runner.status()}
    behind = sorted(name for name, seconds in lag.items() if seconds > max_lag)
    return {
        "status": "lagging" if behind else "ok",
        "max_lag_seconds": max_lag,
        "lag_seconds": lag,
        **({"lagging": behind} if behind else {}),
    }


async def metrics(call: SystemCall) -> Response:
    """The metrics; the projection gauges keep their last values while the database fails."""
    try:
        call.services.metrics.projections(await call.services.runner.status(rebuilds=True))
    except (DatabaseError, EventStoreError) as exc:
        logger.warning(
            "projection status unavailable for /metrics",
            extra={"action": "metrics.projections_unavailable", "error": type(exc).__name__},
        )
    return Response(call.services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(call: SystemCall) -> Response:
    return JSONResponse(call.services.openapi)


_READY = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
        "checks": {"type": "object"},
    },
    "required": ["status", "checks"],
}

OPERATIONS: list[Operation[SystemServices]] = [
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
        "Readiness: 503 when the database or the event log fails, or a projection lags more than"
        " JACAMENO_READY_MAX_PROJECTION_LAG_SECONDS (when set); 200 with status `degraded` when"
        " only Redis does",
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
