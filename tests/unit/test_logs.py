"""JSON log lines, and tokens in logged URLs scrubbed."""

from __future__ import annotations

import json
import logging

from jacameno.logs import JsonFormatter, RedactSecrets, redact


def test_tokens_in_query_strings_are_redacted() -> None:
    assert redact("GET /collab/p?token=abc.def.ghi&x=1") == "GET /collab/p?token=[redacted]&x=1"
    assert redact('"WebSocket /collab/p?doc=1&token=eyJ" [accepted]') == (
        '"WebSocket /collab/p?doc=1&token=[redacted]" [accepted]'
    )
    assert redact("refresh_token=r1 access_token=a2") == (
        "refresh_token=[redacted] access_token=[redacted]"
    )
    assert redact("nothing secret, tokens=3") == "nothing secret, tokens=3"


def test_a_uvicorn_style_record_is_logged_without_its_token() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/collab/p1?token=eyJhbGciOi.secret.sig"),
        None,
    )
    assert RedactSecrets().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "secret" not in line["message"]
    assert line["message"] == '127.0.0.1:5000 - "WebSocket /collab/p1?token=[redacted]" [accepted]'
