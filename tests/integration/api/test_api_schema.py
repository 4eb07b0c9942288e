"""schemathesis against `/openapi.json` of a real server: no 5xx, and every response matches
the schema its operation declares (status, content type, body, headers).

The operations run in the schema's order on three live projects, deleting a project last: run
earlier, it deleted all three within its first examples, and every project operation after it
met only 404s. Ten examples an operation meet the (operation, status) pairs that forty meet, 90
to 92 of them in runs of each, the rarest (a successful restore) not in every run;
`--hypothesis-profile=deep` draws ten times as many."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

import jacameno.server
from harness.accounts import PASSWORD, unique_email
from jacameno.app import OPERATIONS, create_app
from jacameno.settings import Settings
from tests.hypothesis_profiles import examples

EXAMPLES_PER_OPERATION = examples(10)
# An event stream never ends: judge what it sent within this many seconds (its replay of the
# project's log comes at once; the read timeout also bounds the wait for its headers).
EVENT_STREAM_SECONDS = 1.0
PROJECT_DELETION = ("DELETE", "/api/projects/{project_id}")
# POSTs whose body is checked beyond what its schema can say (see `refused` below)
CHECKED_BODIES = ("/ai/jobs", "/updates", "/restore", "/assets", "/api/plays")


@contextlib.contextmanager
def serving(settings_: Settings) -> Iterator[str]:
    """The app on a free port of 127.0.0.1 under uvicorn, in a thread; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = jacameno.server.config(create_app(settings_), "127.0.0.1", 0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "the server did not start within 10 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _login(base: str, email: str) -> dict[str, Any]:
    with httpx.Client(base_url=base) as client:
        response = client.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Fuzz"},
        )
        assert response.status_code == 201, response.text
        tokens: dict[str, Any] = client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        ).json()
        me = client.get("/api/me", headers=_bearer(tokens)).json()
        return {"tokens": tokens, "id": me["id"], "email": email}


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.mark.slow
def test_every_operation_answers_as_its_schema_says(api_config: Settings) -> None:
    with serving(api_config) as base:
        owner = _login(base, unique_email("owner"))
        other = _login(base, unique_email("other"))
        headers = _bearer(owner["tokens"])
        projects = []
        with httpx.Client(base_url=base, headers=headers) as client:
            for n in range(3):
                project = client.post("/api/projects", json={"title": f"Song {n}"}).json()
                client.post(
                    f"/api/projects/{project['id']}/members",
                    json={"email": other["email"], "role": "editor"},
                )
                projects.append(project["id"])
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) == len(OPERATIONS) - 1  # schemathesis skips /openapi.json
        operations.sort(key=lambda o: (o.method.upper(), o.path) == PROJECT_DELETION)
        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(
                case=operation.as_strategy(),
                project_id=st.sampled_from([*projects, None]),
                user_id=st.sampled_from([owner["id"], other["id"], None]),
            )
            def check(case: Any, project_id: str | None, user_id: str | None) -> None:
                parameters = case.path_parameters or {}
                if project_id is not None and "project_id" in parameters:
                    parameters["project_id"] = project_id
                if user_id is not None and "user_id" in parameters:
                    parameters["user_id"] = user_id
                # An opaque cursor (`cursor`, `after`) that this server never gave is refused
                # with 400, though the schema cannot tell such strings apart from real cursors;
                # an analytics window
                # (from, to, granularity) is checked by its handler, whose 400 names the
                # parameter: no schema says "from before to" or "at most 366 days". The state
                # at a version and at a moment at once is refused with 400 too: a rule between
                # two parameters that a query schema cannot state. Blame answers for the lyrics
                # and one track: another well-formed path is refused with 400 naming it. A
                # job's parameters go together by rules between them (the custom preset and
                # only it takes a target, analysis takes none): 400 names the one that breaks.
                # What a body must hold beyond its schema: a Yjs update (400 malformed_update),
                # a version between 0 and the head and a part the document has (restore: 400),
                # audio (an asset: 415 not_audio), plays of published tracks (422 unknown_tracks).
                query = case.query or {}
                refused = (
                    bool({"cursor", "after"} & set(query))
                    or bool({"from", "to", "granularity"} & set(query))
                    or {"version", "at"} <= query.keys()
                    or (case.path.endswith("/blame") and "path" in query)
                    or (case.method == "POST" and case.path.endswith(CHECKED_BODIES))
                )
                excluded = [positive_data_acceptance] if refused else []
                stream = {"timeout": EVENT_STREAM_SECONDS} if case.path.endswith("/events") else {}
                case.call_and_validate(headers=headers, excluded_checks=excluded, **stream)

            check()
