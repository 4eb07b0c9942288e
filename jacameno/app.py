"""The composition root: one app factory; everything with a lifetime is built in the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventstore import EventStore, EventStoreError
from jacameno.database import open_event_store
from jacameno.settings import Settings

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the event log answers."""
    store: EventStore = request.app.state.store
    try:
        head = await store.head_position()
    except EventStoreError as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "database": {"head_position": head}})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_event_store(settings)
        app.state.store = store
        logger.info(
            "started",
            extra={"action": "app.start", "database": settings.database_kind, "env": settings.env},
        )
        try:
            yield
        finally:
            await store.close()

    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
