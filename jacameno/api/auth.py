"""`/api/auth`: register, login, refresh (rotating refresh tokens) and logout; `/api/me`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jacameno.accounts import Accounts, EmailTaken, User, normalize_email
from jacameno.auth.sessions import RefreshTokens, SessionInvalid, SessionReused
from jacameno.auth.tokens import AccessTokens
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from jacameno.http.errors import ApiError, conflict, rate_limited, unauthorized
from jacameno.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class AuthServices:
    """What the account routes need. The limits are attempts per minute: from one address
    (`per_address`), and at one account from one address (`per_account`)."""

    accounts: Accounts
    access_tokens: AccessTokens
    refresh_tokens: RefreshTokens
    limiter: RateLimiter
    per_address: int
    per_account: int


AuthCall = Call[AuthServices]


def _address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (the app's
    ProxyHeadersMiddleware, JACAMENO_TRUSTED_PROXIES, has already put it in the scope)."""
    return request.client.host if request.client else "unknown"


async def _limit(call: AuthCall, key: str, limit: int) -> None:
    retry = await call.services.limiter.hit(key, limit, 60)
    if retry:
        raise rate_limited(retry)


async def _limit_address(call: AuthCall) -> None:
    """Login and register attempts from one address (every account together)."""
    await _limit(call, f"auth:ip:{_address(call.request)}", call.services.per_address)


async def _limit_login(call: AuthCall, email: str) -> None:
    """Login attempts per address, then per account from that address. No limit counts an
    account's attempts from every address together: whoever knows an email could then lock its
    owner out (docs/security.md, "Accounts and sessions")."""
    await _limit_address(call)
    account = f"auth:account:{normalize_email(email)}:ip:{_address(call.request)}"
    await _limit(call, account, call.services.per_account)


async def _tokens(services: AuthServices, user_id: str, refresh_token: str) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": services.access_tokens.issue(user_id),
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": services.access_tokens.ttl_seconds,
        }
    )


async def register(call: AuthCall) -> Response:
    body = call.body
    await _limit_address(call)
    try:
        user = await call.services.accounts.register(
            body["email"], body["password"], body["display_name"]
        )
    except EmailTaken as exc:
        raise conflict("email_taken", "an account with this email exists") from exc
    return JSONResponse({"user": user.public()}, status_code=201)


async def login(call: AuthCall) -> Response:
    await _limit_login(call, call.body["email"])
    user = await call.services.accounts.authenticate(call.body["email"], call.body["password"])
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    call.request.state.user_id = user.id
    return await _tokens(call.services, user.id, await call.services.refresh_tokens.start(user.id))


async def refresh(call: AuthCall) -> Response:
    tokens = call.services.refresh_tokens
    try:
        user_id, next_token = await tokens.rotate(call.body["refresh_token"])
    except SessionReused as exc:
        raise ApiError(401, "refresh_token_reused", "token reused; the session is revoked") from exc
    except SessionInvalid as exc:
        raise unauthorized("the refresh token is invalid, expired or revoked") from exc
    if await call.services.accounts.get(user_id) is None:
        await tokens.revoke(next_token)
        raise unauthorized("the refresh token is invalid, expired or revoked")
    return await _tokens(call.services, user_id, next_token)


async def logout(call: AuthCall) -> Response:
    try:
        await call.services.refresh_tokens.revoke(call.body["refresh_token"])
    except SessionInvalid as exc:
        raise unauthorized("the refresh token is invalid") from exc
    return Response(status_code=204)


async def get_me(call: AuthCall) -> Response:
    return JSONResponse(call.me.public())


async def update_me(call: AuthCall) -> Response:
    body = call.body
    preferences: dict[str, Any] | None = body.get("preferences")
    if preferences is not None and len(json.dumps(preferences)) > schemas.PREFERENCES_MAX_BYTES:
        raise ApiError(
            422,
            "invalid_request",
            "preferences are too large",
            {"max_bytes": schemas.PREFERENCES_MAX_BYTES},
        )
    user: User = await call.services.accounts.update(
        call.me,
        display_name=body.get("display_name"),
        avatar_url=body.get("avatar_url"),
        clear_avatar="avatar_url" in body and body["avatar_url"] is None,
        preferences=preferences,
    )
    return JSONResponse(user.public())


OPERATIONS: list[Operation[AuthServices]] = [
    Operation(
        "POST",
        "/api/auth/register",
        "register",
        "Create an account",
        register,
        "auth",
        request=schemas.REGISTER,
        responses={201: schemas.REGISTERED},
        errors=(409,),
        authenticated=False,
    ),
    Operation(
        "POST",
        "/api/auth/login",
        "login",
        "Log in: an access token and a refresh token",
        login,
        "auth",
        request=schemas.LOGIN,
        responses={200: schemas.TOKENS},
        errors=(401,),
        authenticated=False,
    ),
    Operation(
        "POST",
        "/api/auth/refresh",
        "refresh",
        "Trade a refresh token for new tokens (the old one is spent; reusing it revokes the"
        " session, except within a short grace after its rotation, which yields the current"
        " pair again)",
        refresh,
        "auth",
        request=schemas.REFRESH,
        responses={200: schemas.TOKENS},
        errors=(401,),
        authenticated=False,
    ),
    Operation(
        "POST",
        "/api/auth/logout",
        "logout",
        "Revoke the session of a refresh token",
        logout,
        "auth",
        request=schemas.REFRESH,
        responses={204: None},
        errors=(401,),
        authenticated=False,
    ),
    Operation(
        "GET",
        "/api/me",
        "get_me",
        "The caller's account",
        get_me,
        "me",
        responses={200: schemas.USER},
    ),
    Operation(
        "PATCH",
        "/api/me",
        "update_me",
        "Change display name, avatar URL or preferences",
        update_me,
        "me",
        request=schemas.UPDATE_ME,
        responses={200: schemas.USER},
    ),
]
