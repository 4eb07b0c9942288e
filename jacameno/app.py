"""The composition root: one app factory; everything with a lifetime is built in the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from eventstore import StoreUnavailableError
from jacameno.accounts import Accounts
from jacameno.api import auth, documents, projects, system
from jacameno.auth.passwords import Passwords
from jacameno.auth.sessions import DatabaseSessionStore, RefreshTokens
from jacameno.auth.tokens import AccessTokens
from jacameno.bus.redis import RedisBus
from jacameno.circuit import Circuit
from jacameno.collab import hocuspocus, ywebsocket
from jacameno.collab.config import CollabConfig
from jacameno.collab.gatekeeper import MembershipGatekeeper
from jacameno.collab.lobby import Lobby
from jacameno.collab.membership import MembershipFollower
from jacameno.collab.rooms import Rooms, node_name
from jacameno.database import open_event_store
from jacameno.http import errors, openapi
from jacameno.http.endpoint import Operation, route
from jacameno.http.middleware import (
    BodyLimitMiddleware,
    JsonCORSMiddleware,
    RequestContextMiddleware,
)
from jacameno.metrics import Metrics
from jacameno.projects.locks import PostgresTurns, ProcessTurns, Turns
from jacameno.projects.readmodel import ProjectsReadModel
from jacameno.projects.service import Projects
from jacameno.ratelimit import (
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from jacameno.services import Services
from jacameno.settings import Settings
from projections.projects import projects_projection
from projections.runner import ProjectionRunner
from sqldb import DatabaseUnavailable, open_database

logger = logging.getLogger(__name__)

API_VERSION = "0.1.0"
OPERATIONS: list[Operation] = [
    *system.OPERATIONS,
    *auth.OPERATIONS,
    *projects.OPERATIONS,
    *documents.OPERATIONS,
]


async def _unavailable(request: Request, exc: Exception) -> Response:
    logger.warning(
        "backing service unavailable",
        extra={"action": "http.unavailable", "error": type(exc).__name__},
    )
    error = errors.ApiError(503, "unavailable", "a backing service is unavailable; retry later")
    error.headers["Retry-After"] = "1"
    return errors.error_response(error)


def create_app(settings: Settings | None = None, collab: CollabConfig | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    collab_config = collab or CollabConfig.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            store = await open_event_store(settings)
            stack.push_async_callback(store.close)
            db = await open_database(settings.database_url)
            stack.push_async_callback(db.close)
            turns: Turns = ProcessTurns()
            if settings.database_kind == "postgres":
                turns = await PostgresTurns.open(settings.database_url)
                stack.push_async_callback(turns.close)
            redis: Redis | None = None
            circuit: Circuit | None = None
            limiter: RateLimiter = MemoryRateLimiter()
            if settings.redis_url is not None:
                # Bounded calls and one quick retry (a pooled connection that a Redis restart
                # closed): Redis is never waited on for long (docs/operations.md, "Redis outage").
                timeout = settings.redis_timeout_ms / 1000
                redis = Redis.from_url(
                    settings.redis_url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 1),
                )
                stack.push_async_callback(redis.aclose)
                circuit = Circuit("redis", settings.redis_retry_seconds, on_change=metrics.redis_up)
                limiter = FallbackRateLimiter(
                    RedisRateLimiter(redis),
                    MemoryRateLimiter(),
                    circuit,
                    on_fallback=metrics.ratelimit_fallbacks.inc,
                )
            runner = ProjectionRunner(store, db, [projects_projection()])
            await runner.start()
            stack.push_async_callback(runner.stop)
            passwords = Passwords(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            )
            # Sessions live in the database even with Redis: they must outlive Redis restarts.
            sessions = DatabaseSessionStore(db)
            accounts = Accounts(db, passwords, store)
            access_tokens = AccessTokens(settings.jwt_secret, settings.access_token_seconds)
            reads = ProjectsReadModel(db)
            node = node_name()
            # Several nodes share one Redis; a single node without one publishes nothing.
            bus = (
                None
                if settings.redis_url is None
                else RedisBus(
                    settings.redis_url, name=node, max_backoff=collab_config.bus_max_backoff
                )
            )
            gatekeeper = MembershipGatekeeper(access_tokens, accounts, reads)
            rooms = Rooms(store, gatekeeper, collab_config, node, bus)
            app.state.collab = rooms
            app.state.lobby = Lobby(collab_config.max_unauthenticated_sockets)
            rooms.start()
            stack.push_async_callback(rooms.close)
            # From the read model's checkpoint, not the head: a change the read model has not
            # applied yet may still let a socket in on the old membership.
            membership = MembershipFollower(
                store,
                rooms.apply_membership,
                min(status.position for status in await runner.status()),
                settled=runner.wait_for,
                interval=collab_config.follow_interval,
            )
            membership.start()
            stack.push_async_callback(membership.stop)
            app.state.services = Services(
                settings=settings,
                store=store,
                db=db,
                redis=redis,
                redis_circuit=circuit,
                runner=runner,
                metrics=metrics,
                passwords=passwords,
                accounts=accounts,
                access_tokens=access_tokens,
                refresh_tokens=RefreshTokens(
                    sessions,
                    settings.jwt_secret,
                    settings.refresh_token_seconds,
                    settings.refresh_grace_seconds,
                ),
                limiter=limiter,
                projects=Projects(store, runner, reads, followers=[membership], turns=turns),
            )
            logger.info(
                "started",
                extra={
                    "action": "app.start",
                    "database": settings.database_kind,
                    "redis": redis is not None,
                    "env": settings.env,
                },
            )
            yield

    unavailable = (DatabaseUnavailable, StoreUnavailableError, RedisError, TimeoutError)
    # The one place the client address comes from: the peer, or what a configured proxy
    # forwarded (uvicorn's own proxy-header handling is off, jacameno/server.py).
    proxies = (
        [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))]
        if settings.trusted_proxies
        else []
    )
    app = Starlette(
        routes=[*(route(op) for op in OPERATIONS), *ywebsocket.ROUTES, *hocuspocus.ROUTES],
        middleware=[
            *proxies,
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
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            errors.ApiError: errors.api_error_handler,
            HTTPException: errors.http_exception_handler,
            **{kind: _unavailable for kind in unavailable},
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.openapi = openapi.document(OPERATIONS, API_VERSION)
    return app
