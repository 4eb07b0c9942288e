"""Hostile input, secrets in logs, and the operational surface: request ids, metrics, health,
readiness, CORS, GZip and the OpenAPI document."""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import quote

import jsonschema_rs
import pytest

from harness.accounts import PASSWORD, unique_email
from jacameno.app import OPERATIONS
from jacameno.logs import JsonFormatter
from tests.integration.api.support import Api

HOSTILE = [
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM projects WHERE ('1'='1",
    "$1 $2 ?1 %s {}",
    "nul\x00byte",  # Postgres cannot store NUL in text: refused alike on both databases
    "x" * 100_000,
]


async def test_injection_strings_and_huge_strings_do_no_harm(api: Api) -> None:
    owner = await api.member("owner")
    project = await api.project(owner)
    path = f"/api/projects/{project['id']}"
    for text in HOSTILE:
        bodies = [
            ("POST", "/api/auth/register", {"email": text, "password": text, "display_name": text}),
            (
                "POST",
                "/api/auth/register",
                {"email": unique_email(), "password": PASSWORD, "display_name": text},
            ),
            ("POST", "/api/auth/login", {"email": text, "password": text}),
            ("POST", "/api/auth/refresh", {"refresh_token": text}),
            ("PATCH", "/api/me", {"display_name": text}),
            ("PATCH", "/api/me", {"avatar_url": text}),
            ("PATCH", "/api/me", {"preferences": {"k": text}}),
            ("POST", "/api/projects", {"title": text}),
            ("PATCH", path, {"title": text}),
            ("POST", f"{path}/members", {"email": text, "role": "viewer"}),
        ]
        for method, url, body in bodies:
            response = await api.client.request(method, url, json=body, headers=owner.headers)
            assert response.status_code < 500, (method, url, response.text[:200])
            assert len(response.content) < 10_000
        odd = await api.client.get(
            f"/api/projects/{quote(text[:200], safe='')}", headers=owner.headers
        )
        assert odd.status_code == 404
    # Short injection strings are stored verbatim as data, and nothing was dropped.
    titled = await api.client.patch(path, json={"title": HOSTILE[0]}, headers=owner.headers)
    assert titled.json()["title"] == HOSTILE[0]
    assert (await api.client.get("/api/me", headers=owner.headers)).status_code == 200
    assert await api.services.core.db.fetchval("SELECT count(*) FROM projects") >= 1


async def test_a_nul_in_a_query_or_a_path_is_refused_on_every_database(api: Api) -> None:
    """Postgres cannot take NUL in text: a query string with one is a 422 naming the parameter,
    a path parameter with one is a 404, never a 500 (schemathesis found `?genre=%00` on Postgres
    answering 500)."""
    owner = await api.member("owner")
    for op in OPERATIONS:
        if op.method != "GET":
            continue
        headers = owner.headers if op.authenticated else {}
        if "{" in op.path:
            path = re.sub(r"\{[^}]+\}", "nul%00byte", op.path)
            response = await api.client.get(path, headers=headers)
            assert response.status_code == 404, (op.path, response.text[:200])
        # The query is checked before the handler reads the path: any path will do.
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), op.path)
        for query in [q for q in op.query if q.schema.get("type") == "string"]:
            # and the OpenAPI document says so, or a schema-valid request would be refused
            assert not jsonschema_rs.validator_for(query.declared).is_valid("a\x00b")
            response = await api.client.get(f"{path}?{query.name}=a%00b", headers=headers)
            assert response.status_code == 422, (op.path, query.name, response.text[:200])
            errors = response.json()["error"]["details"]
            assert {(e["in"], e["path"]) for e in errors} == {("query", f"/{query.name}")}
            assert "Pattern" in {e["rule"] for e in errors}


async def test_passwords_and_tokens_never_reach_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_password = "hunter2-" + unique_email()
    user = await api.register("lo", password=secret_password)
    tokens = await api.login(user["email"], secret_password)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    await api.client.get("/api/me", headers=headers)
    await api.client.get(f"/api/me?token={tokens['access_token']}", headers=headers)
    await api.client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await api.client.post("/api/auth/login", json={"email": user["email"], "password": "x" * 9})
    formatter = JsonFormatter()
    # The server's records (the test's own HTTP client logs its URLs, query string included).
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(formatter.format(record) for record in server)
    assert "http.request" in logged
    for secret in (secret_password, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logged
        assert secret.split(".")[0] not in logged


async def test_every_response_has_a_request_id_and_echoes_a_good_one(api: Api) -> None:
    fresh = await api.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    echoed = await api.client.get("/healthz", headers={"X-Request-ID": "client-abc-123"})
    assert echoed.headers["x-request-id"] == "client-abc-123"
    refused = await api.client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert refused.headers["x-request-id"] != "bad id\n"
    missing = await api.client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "x-request-id" in missing.headers


async def test_metrics_count_requests_by_route_template_and_active_users(api: Api) -> None:
    member = await api.member("mo")
    project = await api.project(member)
    await api.client.get(f"/api/projects/{project['id']}", headers=member.headers)
    await api.client.get(f"/api/projects/{project['id']}/members", headers={})
    text = (await api.client.get("/metrics")).text
    assert 'route="/api/projects/{project_id}"' in text
    assert project["id"] not in text
    assert "jacameno_http_request_duration_seconds_bucket" in text
    assert (
        'jacameno_http_errors_total{method="GET",route="/api/projects/{project_id}/members",status="401"}'
        in text
    )
    assert "jacameno_active_users 1.0" in text


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert ("redis" in checks) == (api.settings.redis_url is not None)


async def test_the_openapi_document_covers_every_route(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    declared = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert declared == {(op.method, op.path) for op in OPERATIONS}
    register = document["paths"]["/api/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "email",
        "password",
        "display_name",
    ]
    assert "201" in register["responses"]


async def test_large_responses_are_gzipped(api: Api) -> None:
    response = await api.client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
