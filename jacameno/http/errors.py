"""API errors and their one JSON shape: `{"error": {"code", "message", "details"}}`.

Handlers raise `ApiError` (or one of the helpers below); the middleware and the exception
handlers render it. Unknown routes and methods (Starlette's HTTPException) get the same shape."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered to the client as it is: status, stable code, message, details."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message or self.code.replace("_", " ")
        self.details = details
        self.headers = headers or {}
        super().__init__(f"{status} {self.code}: {self.message}")


def error_body(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.status, error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def not_found(what: str = "project") -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


def unauthorized(message: str = "a valid access token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "your role does not allow this") -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def rate_limited(retry_after: float) -> ApiError:
    seconds = max(1, int(retry_after + 0.999))
    return ApiError(
        429,
        "rate_limited",
        "too many requests; retry later",
        {"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = ApiError(exc.status_code, None, exc.detail if exc.detail else None)
    error.headers.update(exc.headers or {})
    if exc.status_code == 405:
        error.headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(error)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first
    route that matched the path, and each of our operations is a route of its own)."""
    methods: set[str] = set()
    for candidate in request.app.router.routes:
        if isinstance(candidate, Route) and candidate.matches(request.scope)[0] is not Match.NONE:
            methods.update(candidate.methods or ())
    return sorted(methods)
