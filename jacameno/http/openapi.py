"""The OpenAPI 3.1 document, built from the declared operations and their schemas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jacameno.http import schemas
from jacameno.http.endpoint import Operation

_PATH_PARAM = re.compile(r"{([a-z_]+)}")
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No content",
    206: "Partial content: the byte range asked for (Content-Range says which)",
    304: "Not modified: the ETag in If-None-Match still matches",
    307: "Served elsewhere: GET the Location (a presigned storage URL, Range included)",
    400: "Malformed request (bad JSON, bad cursor)",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role does not allow this",
    404: "No such resource (or the caller may not know it exists)",
    409: "Conflict with the current state",
    413: "The request body is too large",
    415: "The body is not audio this server can read",
    416: "No satisfiable byte range (Content-Range: bytes */size)",
    422: "The request does not match its schema",
    429: "Rate limited; see Retry-After",
    503: "A backing service is unavailable; retry later",
}


def _response(code: int, schema: schemas.Schema | None, media_type: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _REASONS.get(code, "Response")}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def _error(code: int) -> dict[str, Any]:
    response = _response(code, {"$ref": "#/components/schemas/Error"}, "application/json")
    if code == 416:
        response["headers"] = {
            "Content-Range": {"description": "bytes */size", "schema": {"type": "string"}}
        }
    if code in (429, 503):
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return response


def _operation(op: Operation[Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schemas.UUID}
        for name in _PATH_PARAM.findall(op.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "schema": q.declared,
            "description": q.description,
        }
        for q in op.query
    ]
    responses = {str(code): _response(code, s, op.media_type) for code, s in op.responses.items()}
    if op.raw_response is not None and "content" in responses.get("200", {}):
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses["200"]["content"][op.raw_response] = binary
    for code in op.all_errors:
        responses.setdefault(str(code), _error(code))
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if parameters:
        doc["parameters"] = parameters
    if op.request is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.request}},
        }
    elif op.raw_request is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {op.raw_request: {"schema": {"type": "string", "format": "binary"}}},
        }
    doc["security"] = [{"bearer": []}] if op.authenticated else []
    return doc


def document(operations: Sequence[Operation[Any]], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "JACAMENO",
            "version": version,
            "description": (
                "The REST API of the JACAMENO collaborative music studio. Besides the errors "
                "listed per operation, any request may be answered in the same Error shape "
                "with 403 `cors_refused` (a CORS preflight from an origin that is not "
                "allowed), 405 `method_not_allowed`, 408 `request_timeout` (the request "
                "headers did not arrive in time), 431 `headers_too_large`, 501 "
                "`not_implemented` (a method the server does not know) or 503 `unavailable` "
                "(the node holds its maximum of connections)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": schemas.ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
