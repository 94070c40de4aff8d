"""X-Request-ID: kept when well-formed, made otherwise, on every response, log line and problem."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import config, logs
from tests.conftest import csrf_token

GENERATED = re.compile(r"[0-9a-f]{32}")
ROOT = Path(__file__).resolve().parent.parent

#: One of each kind of response: a page, a redirect, static, an API problem, a 404 page,
#: a 404 problem, the public API document and a 405.
EVERY_KIND = [
    ("get", "/login"),
    ("get", "/settings"),
    ("get", "/static/favicon.svg"),
    ("get", "/api/user/settings"),
    ("get", "/nowhere"),
    ("get", "/api/nowhere"),
    ("get", "/api/openapi.json"),
    ("delete", "/api/openapi.json"),
]


@pytest.fixture
def backend() -> str:
    """Nothing here depends on the database."""
    return "sqlite"


@pytest.mark.parametrize(("method", "path"), EVERY_KIND)
def test_a_well_formed_id_is_echoed_on_every_response(
    client: FlaskClient, method: str, path: str
) -> None:
    with getattr(client, method)(path, headers={"X-Request-ID": "lb-7f3a.01_Z"}) as response:
        assert response.headers.getlist("X-Request-ID") == ["lb-7f3a.01_Z"]


@pytest.mark.parametrize(("method", "path"), EVERY_KIND)
def test_without_one_each_response_gets_a_new_id(
    client: FlaskClient, method: str, path: str
) -> None:
    with getattr(client, method)(path) as first, getattr(client, method)(path) as second:
        assert GENERATED.fullmatch(first.headers["X-Request-ID"])
        assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "sent",
    ["", "x" * 129, "two words", "<script>", "id;drop", "é", "a/b", "a\tb"],
)
def test_a_malformed_id_is_replaced_never_echoed(client: FlaskClient, sent: str) -> None:
    response = client.get("/api/user/settings", headers={"X-Request-ID": sent})
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_the_longest_well_formed_id_is_kept(client: FlaskClient) -> None:
    sent = "a" * 128
    assert client.get("/login", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


def test_problem_documents_carry_the_request_id(client: FlaskClient) -> None:
    response = client.get("/api/user/settings", headers={"X-Request-ID": "support-42"})
    assert response.status_code == 401
    assert response.get_json()["request_id"] == "support-42"


@pytest.fixture
def captured(app: Flask) -> Iterator[io.StringIO]:
    """What the app's JSON log handler writes while a test runs, on the ``app`` loggers."""
    stream = io.StringIO()
    handler = logs.log_handler(config.JSON_LOGS)
    handler.setStream(stream)
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_an_unexpected_error_is_logged_as_json_under_its_request_id(
    captured: io.StringIO,
    signed_in: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.preferences.service.update_from_document", explode)
    response = signed_in.put(
        "/api/user/settings",
        json={"theme": "dark"},
        headers={"X-CSRFToken": csrf_token(signed_in, "/settings"), "X-Request-ID": "r-500"},
    )
    assert response.status_code == 500
    assert response.get_json()["request_id"] == "r-500"
    (line,) = [json.loads(text) for text in captured.getvalue().splitlines()]
    assert line["request_id"] == "r-500"
    assert line["level"] == "ERROR"
    assert line["logger"] == "app.errors"
    assert "PUT /api/user/settings" in line["message"]
    assert "RuntimeError: boom" in line["exc_info"]
    assert line["timestamp"].endswith("+00:00")


def test_text_lines_name_the_request_too() -> None:
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "slow %s", ("cache",), None)
    handler = logs.log_handler(config.TEXT_LOGS)
    assert handler.filter(record)
    assert handler.format(record).endswith("WARNING app.x [-]: slow cache")


def test_log_format_must_be_text_or_json() -> None:
    with pytest.raises(RuntimeError, match="LOG_FORMAT"):
        config.build_config({"SECRET_KEY": "x", "LOG_FORMAT": "xml"})


def test_log_format_json_from_the_environment_writes_json_lines(tmp_path: Path) -> None:
    """As an operator runs it: a fresh process, LOG_FORMAT=json, nothing set up beforehand."""
    program = """
import logging
from app import create_app

app = create_app({"TESTING": True})
logging.getLogger("app.startup").info("ready")
probe = lambda: logging.getLogger("app.probe").warning("in request")
app.before_request_funcs[None].insert(0, probe)
app.test_client().get("/healthz", headers={"X-Request-ID": "from-proxy-1"})
"""
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'logs.db'}",
        "SECRET_KEY": "x",
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["app.startup"]["request_id"] == "-"
    assert by_logger["app.probe"]["request_id"] == "from-proxy-1"
    assert by_logger["app.probe"]["level"] == "WARNING"
    assert by_logger["app.probe"]["message"] == "in request"


def test_json_lines_outside_a_request_say_so_and_keep_the_stack() -> None:
    record = logging.LogRecord("app.cli", logging.INFO, __file__, 1, "done", None, None)
    record.stack_info = "Stack (most recent call last):\n  here"
    handler = logs.log_handler(config.JSON_LOGS)
    assert handler.filter(record)
    line = json.loads(handler.format(record))
    assert (line["request_id"], line["level"], line["message"]) == ("-", "INFO", "done")
    assert line["stack_info"].endswith("here")
    assert "exc_info" not in line
