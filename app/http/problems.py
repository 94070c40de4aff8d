"""Problem documents (RFC 9457) for every error under ``/api``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.http.args import BadArgument
from app.http.json_body import BadBody
from app.logs import current_request_id
from app.preferences import validation, writes
from app.preferences.snapshot import UserNotFound
from app.text import gettext, lazy_gettext

PROBLEM_TYPE_BASE = "/api/problems/"
MEDIA_TYPE = "application/problem+json"


def is_api_request() -> bool:
    """Whether the request is for the JSON API, so errors must be JSON too."""
    return request.path == "/api" or request.path.startswith("/api/")


#: The title of each status the API answers with, translated when a problem is built: the
#: ``type`` stays the English slug clients match on; ``title`` is for people.
TITLES: dict[int, Any] = {
    400: lazy_gettext("Bad request"),
    401: lazy_gettext("Not signed in"),
    403: lazy_gettext("Forbidden"),
    404: lazy_gettext("Not found"),
    405: lazy_gettext("Method not allowed"),
    412: lazy_gettext("Precondition failed"),
    413: lazy_gettext("Request too large"),
    415: lazy_gettext("Unsupported media type"),
    422: lazy_gettext("Invalid input"),
    429: lazy_gettext("Too many requests"),
    500: lazy_gettext("Internal server error"),
    503: lazy_gettext("Service unavailable"),
}


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

    ``request_id`` names the request, so a report of the problem leads to its log lines.
    """
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": str(TITLES.get(status, phrase)),
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
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


def register_handlers(bp: Blueprint) -> None:
    """Answer every refusal a view of ``bp`` lets through with its problem document.

    So the views read as what they do: the service's and the plumbing's exceptions become
    problems here, in one place.
    """

    @bp.errorhandler(ProblemError)
    def raised(error: ProblemError) -> Response:
        return error.response()

    @bp.errorhandler(validation.ValidationError)
    def invalid(error: validation.ValidationError) -> Response:
        return validation_problem(error.errors).response()

    @bp.errorhandler(writes.VersionMismatch)
    def precondition_failed(error: writes.VersionMismatch) -> Response:
        # The current ETag says what to fetch.
        return problem(
            412,
            gettext("The settings changed since you read them. Fetch them again and retry."),
            slug="precondition-failed",
            headers={"ETag": error.current.etag},
        )

    @bp.errorhandler(UserNotFound)
    def account_gone(error: UserNotFound) -> Response:
        # The session's user was deleted during the request.
        return problem(401, gettext("Sign in to use the API: no valid session was sent."))

    @bp.errorhandler(BadBody)
    def bad_body(error: BadBody) -> Response:
        patch = error.status == 415 and request.method == "PATCH"
        headers = {"Accept-Patch": ", ".join(sorted(error.accepted))} if patch else None
        slug = "malformed-json" if error.status == 400 else None
        return problem(error.status, error.detail, slug=slug, headers=headers)

    @bp.errorhandler(BadArgument)
    def bad_argument(error: BadArgument) -> Response:
        return problem(400, error.detail, slug=error.slug)
