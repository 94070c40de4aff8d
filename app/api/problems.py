"""Problem documents (RFC 9457) for every error under ``/api``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, jsonify, request

PROBLEM_TYPE_BASE = "/api/problems/"
MEDIA_TYPE = "application/problem+json"


def is_api_request() -> bool:
    """Whether the request is for the JSON API, so errors must be JSON too."""
    return request.path == "/api" or request.path.startswith("/api/")


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A ``application/problem+json`` response with a human ``detail``.

    :param slug: names the problem type (``validation``); the HTTP reason phrase by default.
    :param errors: for validation problems, messages by dotted key.
    """
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
