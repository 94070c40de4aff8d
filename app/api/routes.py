"""The JSON API: the signed-in user's settings, their schema and the OpenAPI document.

Views parse input (``app.http``), call the service and serialise; every refusal becomes a
problem document in ``app.http.problems``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from app.api import openapi
from app.api.contract import (
    CLIENT_HEADER,
    HISTORY_MAX_LIMIT,
    PRIVATE_NO_STORE,
    READ_ONLY,
    SETTINGS_CACHE_CONTROL,
)
from app.http import args, bodies, conditional
from app.http.json_body import JSON_TYPES, MERGE_PATCH_TYPES, NO_BODY, read_json
from app.http.problems import ProblemError, register_handlers, validation_problem
from app.preferences import history, schema, service, transfer, validation
from app.preferences.session import signed_in
from app.preferences.snapshot import Settings
from app.ratelimits import settings_writes
from app.text import gettext

bp = Blueprint("api", __name__)
register_handlers(bp)

bodies.allow("api.import_settings", transfer.IMPORT_MAX_BYTES)


@bp.url_value_preprocessor
def _import_body_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Refuse an import over its limit with the import's own message, before anything reads it.

    URL value preprocessors run before every ``before_request`` function, and CSRFProtect,
    one of those, reads the form and with it the body's length.

    :raise ProblemError: 413 for a declared length over ``IMPORT_MAX_BYTES``.
    """
    if endpoint == "api.import_settings" and (
        (request.content_length or 0) > transfer.IMPORT_MAX_BYTES
    ):
        raise import_too_large()


@bp.get("/user/settings")
def get_settings() -> ResponseReturnValue:
    """The current settings with their ETag, or 304 when the client's copy is current."""
    # The hot path: everything comes from the session's cached snapshot, so no SQL.
    settings = signed_in().settings
    if conditional.not_modified(settings):
        response = Response(status=304)
        response.headers["ETag"] = settings.etag
        response.headers["Cache-Control"] = SETTINGS_CACHE_CONTROL
        return response
    return _settings_response(settings)


@bp.put("/user/settings")
@settings_writes
def put_settings() -> ResponseReturnValue:
    """Save the given keys, keep the others; the full settings and their new ETag."""
    return _write_document(merge_patch=False)


@bp.patch("/user/settings")
@settings_writes
def patch_settings() -> ResponseReturnValue:
    """Apply a JSON Merge Patch, where ``null`` resets; the full settings and new ETag."""
    return _write_document(merge_patch=True)


@bp.post("/user/settings/reset")
@settings_writes
def reset_settings() -> ResponseReturnValue:
    """Put every key, or those named in ``keys``, back to its default; the full settings."""
    body = read_json(JSON_TYPES, optional=True)
    keys = None if body is NO_BODY else _reset_keys(body)
    user = signed_in()
    settings = service.reset_settings(
        user.snapshot,
        keys,
        expected_version=conditional.expected_version(user.settings),
        source="reset",
    )
    return _settings_response(settings)


@bp.get("/user/settings/history")
def get_history() -> ResponseReturnValue:
    """The user's changes, newest first, a page at a time: ``items`` and ``next_cursor``."""
    limit = args.whole_number("limit", history.HISTORY_PAGE, HISTORY_MAX_LIMIT)
    before_id = args.cursor()
    # One more than asked for says whether another page follows.
    changes = history.history(signed_in().id, before_id=before_id, limit=limit + 1)
    items = changes[:limit]
    more = len(changes) > limit
    response = jsonify(
        {
            "items": [change.as_json() for change in items],
            "next_cursor": args.encode_cursor(items[-1].id) if more else None,
        }
    )
    response.headers["Cache-Control"] = PRIVATE_NO_STORE
    return response


@bp.get("/user/settings/export")
def export_settings() -> ResponseReturnValue:
    """A download of the user's explicit choices as a versioned JSON document."""
    document = transfer.export_document(signed_in().id)
    body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    response = Response(body, mimetype="application/json")
    day = str(document["exported_at"])[:10]
    response.headers["Content-Disposition"] = f'attachment; filename="settings-{day}.json"'
    response.headers["Cache-Control"] = PRIVATE_NO_STORE
    return response


@bp.post("/user/settings/import")
@settings_writes
def import_settings() -> ResponseReturnValue:
    """Replace the user's choices with an exported document's; what changed (or would)."""
    dry_run = args.flag("dry_run")
    document = read_import_body()
    result = transfer.import_document(signed_in().snapshot, document, dry_run=dry_run)
    response = jsonify(
        {
            "dry_run": result.dry_run,
            "changed": [change.as_diff() for change in result.changes],
            "settings": result.settings.as_json(),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/user/settings/schema")
def get_schema() -> ResponseReturnValue:
    """The JSON Schema (2020-12) of the settings document."""
    response = jsonify(schema.document_schema())
    response.mimetype = "application/schema+json"
    return response


@bp.get("/openapi.json")
def get_openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API: public, English, the same on every host."""
    return jsonify(openapi.document())


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API reference, rendered in the browser from the OpenAPI document by Swagger UI."""
    return render_template("api/docs.html")


def _settings_response(settings: Settings) -> Response:
    """The settings document with the headers every settings response carries."""
    response = jsonify(settings.as_json())
    response.headers["ETag"] = settings.etag
    response.headers["Cache-Control"] = SETTINGS_CACHE_CONTROL
    return response


def _write_document(*, merge_patch: bool) -> ResponseReturnValue:
    """Validate and save a settings object from the body: all of it or nothing."""
    document = read_json(MERGE_PATCH_TYPES if merge_patch else JSON_TYPES)
    user = signed_in()
    expected = conditional.expected_version(user.settings)
    settings = service.update_from_document(
        user.snapshot,
        _without_read_only(document, merge_patch=merge_patch),
        merge_patch=merge_patch,
        expected_version=expected,
        source=_source(),
    )
    return _settings_response(settings)


def _source() -> str:
    """Where a write comes from, for the history: the dashboard says so, others are "api"."""
    return "dashboard" if request.headers.get(CLIENT_HEADER) == "dashboard" else "api"


def import_too_large() -> ProblemError:
    """413 for an import over ``IMPORT_MAX_BYTES``."""
    return ProblemError(
        413,
        gettext(
            "The file is too large: an exported settings document is at most %(size)d KiB.",
            size=transfer.IMPORT_MAX_BYTES // 1024,
        ),
        slug="import-too-large",
    )


def read_import_body() -> Any:
    """The body of an import, parsed as JSON, up to ``IMPORT_MAX_BYTES`` instead of 16 KiB.

    :raise ProblemError: 413 over the limit; see ``read_json`` for the rest.
    """
    try:
        return read_json(JSON_TYPES)
    except RequestEntityTooLarge as exc:
        raise import_too_large() from exc


def _without_read_only(document: Any, *, merge_patch: bool) -> Any:
    """The document minus ``updated_at``, which a client may echo back from a read.

    :raise ProblemError: 422 when ``updated_at`` is not a string or null, with every other
        problem of the document, so nothing is saved.
    """
    if not isinstance(document, dict) or READ_ONLY not in document:
        return document
    rest = {name: value for name, value in document.items() if name != READ_ONLY}
    if document[READ_ONLY] is None or isinstance(document[READ_ONLY], str):
        return rest
    errors = {READ_ONLY: [gettext("Read-only: send it back as it was read, or leave it out.")]}
    try:
        validation.validate_document(rest, allow_null=merge_patch)
    except validation.ValidationError as exc:
        errors.update(exc.errors)
    raise validation_problem(errors)


def _reset_keys(body: Any) -> list[Any] | None:
    """The ``keys`` of a reset body, or ``None`` (every key) when it names none.

    :raise ProblemError: 422 when the body is not ``{"keys": [...]}``.
    """
    if not isinstance(body, dict):
        raise validation_problem({"": [gettext('The body must be an object: {"keys": [...]}.')]})
    errors = {str(name): [gettext("Unknown member.")] for name in body if name != "keys"}
    keys = body.get("keys")
    if "keys" in body and not isinstance(keys, list):
        errors["keys"] = [gettext("Must be a list of setting names or groups.")]
    if errors:
        raise validation_problem(errors)
    return keys
