"""Problem documents (RFC 9457) for every error under ``/api``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, jsonify, request

from app.preferences import validation

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


class ProblemError(Exception):
    """Raised by a view to answer with a problem document; rendered by the API's handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.errors = errors
        self.headers = headers

    def response(self) -> Response:
        """The problem document this error stands for."""
        return problem(
            self.status, self.detail, slug=self.slug, errors=self.errors, headers=self.headers
        )


def validation_problem(
    errors: dict[str, list[str]], *, headers: dict[str, str] | None = None
) -> ProblemError:
    """A 422 whose ``detail`` names each bad key and its first message."""
    errors = validation.capped(errors)
    # Each message is a sentence, so the keys read as a list of sentences.
    detail = " ".join(
        f"{key}: {messages[0]}" if key else messages[0] for key, messages in errors.items()
    )
    return ProblemError(422, detail, slug="validation", errors=errors, headers=headers)
