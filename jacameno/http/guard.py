"""The door of every authenticated REST operation: the bearer token to a user (the same check as
the collaboration sockets', jacameno.bearer), then the per-user rate limit."""

from __future__ import annotations

from starlette.requests import Request

from jacameno.accounts import User
from jacameno.bearer import Authenticator, NotAuthenticated
from jacameno.http.errors import rate_limited, unauthorized
from jacameno.metrics import Metrics
from jacameno.ratelimit import RateLimiter


class BearerGuard:
    """`Authenticate` for the API (jacameno.http.endpoint): 401 without a valid token of an
    existing user, 429 past `per_minute` requests of one user."""

    def __init__(
        self, authenticator: Authenticator, limiter: RateLimiter, metrics: Metrics, per_minute: int
    ) -> None:
        self._authenticator = authenticator
        self._limiter = limiter
        self._metrics = metrics
        self._per_minute = per_minute

    async def __call__(self, request: Request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        try:
            user = (await self._authenticator.authenticate(token.strip())).user
        except NotAuthenticated as exc:
            raise unauthorized(str(exc)) from exc
        request.state.user_id = user.id
        self._metrics.saw_user(user.id)
        retry = await self._limiter.hit(f"api:user:{user.id}", self._per_minute, 60)
        if retry:
            raise rate_limited(retry)
        return user
