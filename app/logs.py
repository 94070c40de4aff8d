"""Request ids and the app's log format: every log line names the request it belongs to.

A request keeps the ``X-Request-ID`` it came with when that is a plain token (a proxy or a
client chose it, so their logs and ours line up), or gets a fresh one; every response sends
it back, every problem document carries it, and so does every log line emitted meanwhile.
``LOG_FORMAT=json`` writes one JSON object per line, for log collectors.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.config import JSON_LOGS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
#: A client's id is kept only when it is this plain: nothing that could forge a log line
#: or smuggle markup back in the echo.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: What log lines emitted outside any request (start-up, CLI, background threads) carry.
NO_REQUEST = "-"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

_request_id: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)


def current_request_id() -> str:
    """The id of the request being handled, or ``-`` outside one."""
    return _request_id.get()


def accepted_request_id(sent: str | None) -> str:
    """``sent`` when it is a well-formed id, else a new one; a bad one is never echoed."""
    if sent is not None and VALID_REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each request its id, outside Flask, so that every response carries it.

    At the WSGI layer no response escapes: static files, redirects, error pages and
    problem documents, even those raised before any Flask hook runs.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = accepted_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = _request_id.set(request_id)

        def start_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start_with_id)
        finally:
            _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, so any formatter can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", _request_id.get()),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def log_handler(log_format: str) -> logging.Handler:
    """A stderr handler writing ``log_format`` lines (``LOG_FORMAT``) with the request id."""
    handler = logging.StreamHandler()
    json_lines = log_format == JSON_LOGS
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    # On the handler, not a logger: a filter on a logger misses its children's records.
    handler.addFilter(RequestIdFilter())
    return handler
