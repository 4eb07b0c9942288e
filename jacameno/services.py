"""The application's services, built once in the lifespan (jacameno/app.py) and handed to the
HTTP handlers through `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from eventstore import EventStore
from jacameno.accounts import Accounts
from jacameno.auth.passwords import Passwords
from jacameno.auth.sessions import RefreshTokens
from jacameno.auth.tokens import AccessTokens
from jacameno.circuit import Circuit
from jacameno.metrics import Metrics
from jacameno.projects.service import Projects
from jacameno.ratelimit import RateLimiter
from jacameno.settings import Settings
from projections.runner import ProjectionRunner
from sqldb import Database


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: EventStore
    db: Database
    redis: Redis | None
    redis_circuit: Circuit | None
    runner: ProjectionRunner
    metrics: Metrics
    passwords: Passwords
    accounts: Accounts
    access_tokens: AccessTokens
    refresh_tokens: RefreshTokens
    limiter: RateLimiter
    projects: Projects
