"""The HTTP and WebSocket app: its middleware, its error handlers, and its routes, built in the
lifespan over the services the composition root (jacameno.bootstrap) builds there."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from eventstore import StoreUnavailableError
from jacameno import bootstrap
from jacameno.api import (
    admin,
    analytics,
    assets,
    auth,
    catalog,
    documents,
    history,
    jobs,
    playlists,
    projects,
    system,
    tracks,
)
from jacameno.collab import hocuspocus, ywebsocket
from jacameno.documents.service import Documents
from jacameno.http import errors, openapi
from jacameno.http.endpoint import Operation, routes
from jacameno.http.guard import BearerGuard
from jacameno.http.middleware import (
    BodyLimitMiddleware,
    JsonCORSMiddleware,
    RequestContextMiddleware,
    WebSocketsFirst,
)
from jacameno.metrics import Metrics
from jacameno.settings import Settings
from jacameno.storage import StorageUnavailable
from projections.analytics import AnalyticsReadModel
from projections.document import DocumentReadModel
from projections.document_changes import ChangesReadModel
from sqldb import DatabaseUnavailable

logger = logging.getLogger(__name__)

API_VERSION = "0.1.0"
OPERATIONS: list[Operation[Any]] = [
    *system.OPERATIONS,
    *auth.OPERATIONS,
    *projects.OPERATIONS,
    *documents.OPERATIONS,
    *history.OPERATIONS,
    *tracks.OPERATIONS,
    *admin.OPERATIONS,
    *analytics.OPERATIONS,
    *assets.OPERATIONS,
    *jobs.OPERATIONS,
    *catalog.OPERATIONS,
    *playlists.OPERATIONS,
]
# Uploads stream to storage: their bodies are bounded by the upload size, not the JSON one.
UPLOAD_PATH = re.compile(r"^/api/projects/[^/]+/assets$")


async def _unavailable(request: Request, exc: Exception) -> Response:
    logger.warning(  # what failed, in the line itself: a 503 in a test's log must say why
        "backing service unavailable (%s: %s)",
        type(exc).__name__,
        exc,
        extra={"action": "http.unavailable", "error": type(exc).__name__},
    )
    error = errors.ApiError(503, "unavailable", "a backing service is unavailable; retry later")
    error.headers["Retry-After"] = "1"
    return errors.error_response(error)


def app_routes(
    settings: Settings, services: bootstrap.Services, document: dict[str, Any]
) -> list[BaseRoute]:
    """The routes, each resource's given the services it needs."""
    core, who = services.core, services.identity
    guard = BearerGuard(
        who.authenticator, services.limiter, services.metrics, settings.api_rate_limit
    )
    redis = services.redis
    asset_services = assets.AssetServices(
        services.assets, settings.storage.redirect, settings.storage.presign_seconds
    )
    return [
        *routes(
            system.OPERATIONS,
            system.SystemServices(
                core.db,
                core.store,
                None if redis is None else redis.client,
                None if redis is None else redis.circuit,
                core.runner,
                settings.ready_max_projection_lag_seconds,
                services.metrics,
                document,
            ),
            guard,
        ),
        *routes(
            auth.OPERATIONS,
            auth.AuthServices(
                who.accounts,
                who.access_tokens,
                who.refresh_tokens,
                services.limiter,
                per_address=settings.auth_rate_limit,
                per_account=settings.auth_account_rate_limit,
            ),
            guard,
        ),
        *routes(
            projects.OPERATIONS, projects.ProjectServices(services.projects, who.accounts), guard
        ),
        *routes(
            documents.OPERATIONS,
            documents.DocumentServices(
                services.projects,
                services.live.rooms,
                Documents(core.store, services.live.rooms),
            ),
            guard,
        ),
        *routes(
            history.OPERATIONS,
            history.HistoryServices(
                services.projects,
                core.store,
                ChangesReadModel(core.db),
                services.blames,
            ),
            guard,
        ),
        *routes(
            tracks.OPERATIONS,
            tracks.TrackServices(services.projects.reads, DocumentReadModel(core.db)),
            guard,
        ),
        *routes(admin.OPERATIONS, admin.AdminServices(core.runner, settings.admin_emails), guard),
        *routes(
            analytics.OPERATIONS,
            analytics.AnalyticsServices(services.projects.reads, AnalyticsReadModel(core.db)),
            guard,
        ),
        *routes(assets.OPERATIONS, asset_services, guard),
        *routes(
            [*catalog.OPERATIONS, *playlists.OPERATIONS],
            catalog.CatalogServices(
                services.catalog, guard, services.limiter, settings.api_rate_limit, asset_services
            ),
            guard,
        ),
        *routes(
            jobs.OPERATIONS,
            jobs.JobServices(services.projects.reads, services.jobs, services.feed),
            guard,
        ),
        *ywebsocket.routes(services.live.rooms),
        *hocuspocus.routes(services.live.rooms, services.live.lobby),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app. Its lifespan builds the services (jacameno.bootstrap), then the routes over
    them: before it has started, the app has no routes."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    document = openapi.document(OPERATIONS, API_VERSION)
    sockets: list[WebSocketRoute] = []  # the WebSocket routes, served before the middleware

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with bootstrap.services(settings, metrics) as services, metrics.watching_loop():
            app.router.routes[:] = app_routes(settings, services, document)
            sockets[:] = [r for r in app.router.routes if isinstance(r, WebSocketRoute)]
            # Tests and tools look at the services here; handlers and the collaboration
            # endpoints are given theirs (app_routes).
            app.state.services = services
            logger.info(
                "started",
                extra={
                    "action": "app.start",
                    "database": settings.database_kind,
                    "redis": services.redis is not None,
                    "env": settings.env,
                },
            )
            yield

    unavailable = (
        DatabaseUnavailable,
        StoreUnavailableError,
        RedisError,
        TimeoutError,
        StorageUnavailable,
    )
    # The one place the client address comes from: the peer, or what a configured proxy
    # forwarded (uvicorn's own proxy-header handling is off, jacameno/server.py).
    proxies = (
        [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))]
        if settings.trusted_proxies
        else []
    )
    app = Starlette(
        routes=[],
        middleware=[
            *proxies,
            Middleware(WebSocketsFirst, routes=sockets),
            Middleware(RequestContextMiddleware, metrics=metrics),
            Middleware(
                JsonCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID", "Retry-After"],
                max_age=600,
            ),
            Middleware(GZipMiddleware, minimum_size=1024),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                larger=[("POST", UPLOAD_PATH, settings.storage.max_upload_bytes)],
            ),
        ],
        exception_handlers={
            errors.ApiError: errors.api_error_handler,
            HTTPException: errors.http_exception_handler,
            **{kind: _unavailable for kind in unavailable},
        },
        lifespan=lifespan,
    )
    return app
