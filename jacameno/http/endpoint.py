"""Declared operations: one `Operation` per route names its request and response schemas, and
the same declaration drives the handler's validation and the OpenAPI document.

Each resource module declares its operations once and the services its handlers need as one
small type; `routes` binds them to those services when the app is built (jacameno.app), so a
handler reaches only what its resource was given (`call.services`). The wrapper around each
handler parses and validates the JSON body and the query, and for authenticated operations asks
the app's `Authenticate` (jacameno.http.guard) for the caller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import jsonschema_rs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jacameno.accounts import User
from jacameno.http.errors import ApiError, not_found
from jacameno.http.schemas import Schema

S = TypeVar("S")
Handler = Callable[["Call[S]"], Awaitable[Response]]

COMMON_ERRORS = (400, 413, 422, 429, 503)
AUTH_ERRORS = (401,)
# Postgres cannot store NUL in text: bodies and queries refuse it, the same on every database
# (a body by `_has_nul`, a query by its declared schema: `Query.declared`).
NO_NUL = "strings must not contain NUL characters"
NUL_FREE = "^[^\\u0000]*$"


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    schema: Schema
    description: str = ""

    @property
    def declared(self) -> Schema:
        """The schema as validated and as the OpenAPI document gives it: a string without a
        pattern of its own takes one that refuses NUL (`NUL_FREE`); a pattern of its own must
        refuse NUL itself (tests/integration/api/test_api_safety.py checks)."""
        if self.schema.get("type") == "string" and "pattern" not in self.schema:
            return {**self.schema, "pattern": NUL_FREE}
        return self.schema


@dataclass(frozen=True)
class Operation(Generic[S]):
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler[S]
    tag: str
    request: Schema | None = None
    responses: Mapping[int, Schema | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    authenticated: bool = True
    query: tuple[Query, ...] = ()
    media_type: str = "application/json"
    # A body the handler reads itself (`request.body()`, within the body limit), documented
    # as this media type (e.g. application/octet-stream for a Yjs update); None: JSON or none.
    raw_request: str | None = None
    # Another media type the 200 answer may take, as bytes (e.g. a Yjs update on request).
    raw_response: str | None = None

    @property
    def all_errors(self) -> list[int]:
        auth = AUTH_ERRORS if self.authenticated else ()
        return sorted({*COMMON_ERRORS, *auth, *self.errors})


@dataclass(slots=True)
class Call(Generic[S]):
    request: Request
    services: S
    body: dict[str, Any]
    query: dict[str, Any]
    user: User | None

    @property
    def me(self) -> User:
        assert self.user is not None, "only for authenticated operations"
        return self.user

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def uuid(self, name: str, what: str) -> str:
        """The path's parameter `name` if it is a canonical UUID; else 404 (no such `what`)."""
        text = self.path(name)
        try:
            canonical = str(uuid.UUID(text))
        except ValueError as exc:
            raise not_found(what) from exc
        if canonical != text:
            raise not_found(what)
        return text


def _validator(schema: Schema | None) -> Any:
    if schema is None:
        return None
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def _check(validator: Any, instance: Any, where: str) -> None:
    errors = [
        {
            "in": where,
            "path": "/" + "/".join(str(p) for p in e.instance_path),
            "rule": type(e.kind).__name__,
        }
        for e in validator.iter_errors(instance)
    ]
    if errors:
        # The offending values are not echoed: they may be passwords or very large.
        raise ApiError(
            422, "invalid_request", f"the {where} does not match its schema", errors[:20]
        )


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw)
        # Refuses lone surrogates ("\ud800"), which no database can store.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", "the body is not valid JSON (UTF-8)") from exc
    if _has_nul(data):
        raise ApiError(422, "invalid_request", NO_NUL)
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _query(request: Request, params: tuple[Query, ...]) -> dict[str, Any]:
    known = {p.name: p for p in params}
    values: dict[str, Any] = {}
    for name, value in request.query_params.items():
        param = known.get(name)
        if param is None:
            continue
        if param.schema.get("type") == "integer":
            if not value.isdigit() or len(value) > 9:
                raise ApiError(422, "invalid_request", f"{name} must be an integer", [name])
            values[name] = int(value)
        else:
            values[name] = value
    return values


class Authenticate(Protocol):
    async def __call__(self, request: Request) -> User:
        """The user an authenticated request comes from; an ApiError (401, 429) otherwise."""
        ...


def routes(
    operations: Sequence[Operation[S]], services: S, authenticate: Authenticate
) -> list[Route]:
    """The routes of a resource's `operations`, their handlers given `services`."""
    return [_route(operation, services, authenticate) for operation in operations]


def _route(operation: Operation[S], services: S, authenticate: Authenticate) -> Route:
    body_validator = _validator(operation.request)
    query_schema = {
        "type": "object",
        "properties": {q.name: q.declared for q in operation.query},
    }
    query_validator = _validator(query_schema) if operation.query else None

    async def endpoint(request: Request) -> Response:
        user = await authenticate(request) if operation.authenticated else None
        body: dict[str, Any] = {}
        if body_validator is not None:
            data = await _json_body(request)
            _check(body_validator, data, "body")
            body = data
        query = _query(request, operation.query)
        if query_validator is not None:
            _check(query_validator, query, "query")
        return await operation.handler(Call(request, services, body, query, user))

    return Route(operation.path, endpoint, methods=[operation.method], name=operation.operation_id)
