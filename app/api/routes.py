"""The JSON API: the signed-in user's settings, their schema and the OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_etags

from app import bodies
from app.api import openapi
from app.api.problems import ProblemError, validation_problem
from app.models import MAX_ID
from app.preferences import registry, schema, service, validation
from app.preferences.service import Settings
from app.ratelimits import settings_writes
from app.text import gettext

bp = Blueprint("api", __name__)

#: Clients may keep a copy but must revalidate it (cheaply, with ``If-None-Match``) each time.
SETTINGS_CACHE_CONTROL = "private, no-cache"
JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/merge-patch+json", "application/json"})
#: Members of the settings document that the server owns; writes may echo them back.
READ_ONLY = "updated_at"

_NO_BODY = object()
#: Versions start at 1: what If-Match asks for when none of its tags can match.
NO_VERSION = 0

#: An exported document may be larger than a settings body (``MAX_CONTENT_LENGTH``).
IMPORT_MAX_BYTES = 64 * 1024
bodies.allow("api.import_settings", IMPORT_MAX_BYTES)
#: ``?dry_run=`` values, false ones first.
DRY_RUN_VALUES = {"0": False, "false": False, "1": True, "true": True}
#: History cursors are the last id of a page in base 36: opaque, short, URL-safe. The
#: OpenAPI document publishes the same pattern, searched with the same (Python) semantics.
CURSOR_PATTERN = openapi.CURSOR_PATTERN
CURSOR_BASE = 36
HISTORY_MAX_LIMIT = 100


@contextmanager
def service_problems() -> Iterator[None]:
    """Turn the service's refusals into the problem documents the API answers with."""
    try:
        yield
    except validation.ValidationError as exc:
        raise validation_problem(exc.errors) from exc
    except service.VersionMismatch as exc:
        raise _precondition_failed(exc.current) from exc
    except service.UserNotFound as exc:
        raise _account_gone() from exc


@bp.errorhandler(ProblemError)
def problem_error(error: ProblemError) -> ResponseReturnValue:
    """The problem document a view raised."""
    return error.response()


@bp.url_value_preprocessor
def _import_body_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Refuse an import over its limit with the import's own message, before anything reads it.

    URL value preprocessors run before every ``before_request`` function, and CSRFProtect,
    one of those, reads the form and with it the body's length.

    :raise ProblemError: 413 for a declared length over ``IMPORT_MAX_BYTES``.
    """
    if endpoint == "api.import_settings" and (request.content_length or 0) > IMPORT_MAX_BYTES:
        raise import_too_large()


@bp.get("/user/settings")
def get_settings() -> ResponseReturnValue:
    """The current settings with their ETag, or 304 when the client's copy is current."""
    # The hot path: everything comes from the session's cached snapshot, so no SQL.
    settings: Settings = current_user.settings
    etag = settings.etag
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and parse_etags(if_none_match).contains_weak(etag[1:-1]):
        response = Response(status=304)
        response.headers["ETag"] = etag
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
    body = _read_json(JSON_TYPES, optional=True)
    keys = None if body is _NO_BODY else _reset_keys(body)
    current: Settings = current_user.settings
    expected = _expected_version(current)
    with service_problems():
        settings = service.reset_settings(
            current.user_id,
            keys,
            expected_version=expected,
            known=current_user.snapshot,
            source="reset",
        )
    return _settings_response(settings)


@bp.get("/user/settings/history")
def get_history() -> ResponseReturnValue:
    """The user's changes, newest first, a page at a time: ``items`` and ``next_cursor``."""
    limit = _limit_arg()
    before_id = _cursor_arg()
    # One more than asked for says whether another page follows.
    changes = service.history(current_user.id, before_id=before_id, limit=limit + 1)
    items = changes[:limit]
    more = len(changes) > limit
    response = jsonify(
        {
            "items": [change.as_json() for change in items],
            "next_cursor": encode_cursor(items[-1].id) if more else None,
        }
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/user/settings/export")
def export_settings() -> ResponseReturnValue:
    """A download of the user's explicit choices as a versioned JSON document."""
    with service_problems():
        document = service.export_document(current_user.id)
    body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    response = Response(body, mimetype="application/json")
    day = str(document["exported_at"])[:10]
    response.headers["Content-Disposition"] = f'attachment; filename="settings-{day}.json"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/user/settings/import")
@settings_writes
def import_settings() -> ResponseReturnValue:
    """Replace the user's choices with an exported document's; what changed (or would)."""
    dry_run = _dry_run_arg()
    document = read_import_body()
    with service_problems():
        result = service.import_document(
            current_user.id, document, dry_run=dry_run, known=current_user.snapshot
        )
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
    """The OpenAPI 3.1 document of this API."""
    return jsonify(openapi.document())


def _settings_response(settings: Settings) -> Response:
    """The settings document with the headers every settings response carries."""
    response = jsonify(settings.as_json())
    response.headers["ETag"] = settings.etag
    response.headers["Cache-Control"] = SETTINGS_CACHE_CONTROL
    return response


def _write_document(*, merge_patch: bool) -> ResponseReturnValue:
    """Validate and save a settings object from the body: all of it or nothing."""
    document = _read_json(MERGE_PATCH_TYPES if merge_patch else JSON_TYPES)
    current: Settings = current_user.settings
    expected = _expected_version(current)
    document = _without_read_only(document, merge_patch=merge_patch)
    with service_problems():
        settings = service.update_from_document(
            current.user_id,
            document,
            merge_patch=merge_patch,
            expected_version=expected,
            known=current_user.snapshot,
            source=_source(),
        )
    return _settings_response(settings)


def _source() -> str:
    """Where a write comes from, for the history: the dashboard says so, others are "api"."""
    return "dashboard" if request.headers.get("X-Settings-Client") == "dashboard" else "api"


def encode_cursor(last_id: int) -> str:
    """The cursor of the page after the entry ``last_id``."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        last_id, digit = divmod(last_id, CURSOR_BASE)
        text = digits[digit] + text
        if not last_id:
            return text


def _cursor_arg() -> int | None:
    """The id ``?cursor=`` stands for, or ``None`` for the first page.

    :raise ProblemError: 400 for a cursor this API did not hand out.
    """
    cursor = request.args.get("cursor")
    if cursor is None:
        return None
    if not re.search(CURSOR_PATTERN, cursor):
        raise ProblemError(
            400,
            gettext("The cursor is not valid: use the next_cursor of a previous page."),
            slug="bad-cursor",
        )
    # Ids are 32-bit; a larger cursor is past every entry, which is where the list starts.
    return min(int(cursor.strip(), CURSOR_BASE), MAX_ID)


def _limit_arg() -> int:
    """``?limit=``: how many entries a history page holds.

    :raise ProblemError: 400 for anything but a whole number from 1 to 100.
    """
    raw = request.args.get("limit")
    if raw is None:
        return service.HISTORY_PAGE
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= HISTORY_MAX_LIMIT):
        raise ProblemError(
            400,
            gettext("The limit must be a whole number from 1 to %(max)d.", max=HISTORY_MAX_LIMIT),
            slug="bad-limit",
        )
    return int(raw)


def _dry_run_arg() -> bool:
    """``?dry_run=``: report what an import would change without changing it.

    :raise ProblemError: 400 for a value other than 1, true, 0 or false.
    """
    raw = request.args.get("dry_run")
    if raw is None:
        return False
    if raw not in DRY_RUN_VALUES:
        raise ProblemError(400, gettext("dry_run must be 1, true, 0 or false."), slug="bad-dry-run")
    return DRY_RUN_VALUES[raw]


def import_too_large() -> ProblemError:
    """413 for an import over ``IMPORT_MAX_BYTES``."""
    return ProblemError(
        413,
        gettext(
            "The file is too large: an exported settings document is at most %(size)d KiB.",
            size=IMPORT_MAX_BYTES // 1024,
        ),
        slug="import-too-large",
    )


def read_import_body() -> Any:
    """The body of an import, parsed as JSON, up to ``IMPORT_MAX_BYTES`` instead of 16 KiB.

    :raise ProblemError: 413 over the limit, 415 not sent as JSON, 400 not valid JSON.
    """
    # The limit itself was raised before CSRFProtect ran (``_import_body_limit``).
    try:
        return _read_json(JSON_TYPES)
    except RequestEntityTooLarge as exc:
        raise import_too_large() from exc


def parse_json(data: bytes) -> Any:
    """Parse JSON strictly: no ``NaN``, no repeated member names, numbers as ``Decimal``.

    :raise ValueError: with a message saying what is wrong and where.
    """
    try:
        # Decimal keeps 1e999 finite; no float is a valid value, so validation refuses it.
        return json.loads(
            data.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_float=Decimal,
            object_pairs_hook=_unique_members,
        )
    except json.JSONDecodeError as exc:
        reason = gettext(
            "%(message)s at line %(line)d, column %(column)d",
            message=exc.msg,
            line=exc.lineno,
            column=exc.colno,
        )
    except UnicodeDecodeError:
        reason = gettext("the body is not UTF-8")
    except RecursionError:
        reason = gettext("it is nested too deeply")
    except ValueError as exc:
        reason = str(exc)
    raise ValueError(reason)


def _reject_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON, though Python's parser accepts them."""
    raise ValueError(gettext("%(name)s is not a JSON value", name=name))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object from its members; a repeated name is ambiguous, so it is refused."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError(gettext("an object repeats a member name"))
    return document


def _read_json(accepted: frozenset[str], *, optional: bool = False) -> Any:
    """The request body parsed as JSON, or ``_NO_BODY`` when ``optional`` and there is none.

    :raise 413: the body is over ``MAX_CONTENT_LENGTH`` (raised by Werkzeug while reading).
    :raise ProblemError: 415 for a media type other than ``accepted``, 400 for bad JSON.
    """
    # A chunked body has already been read whole and measured (``app.bodies``).
    data = request.get_data(cache=False)
    if optional and not data.strip():
        return _NO_BODY
    if request.mimetype not in accepted:
        raise ProblemError(
            415,
            gettext(
                "The body must be JSON, sent with one of these types: %(types)s.",
                types=", ".join(sorted(accepted)),
            ),
            headers={"Accept-Patch": ", ".join(sorted(accepted))}
            if request.method == "PATCH"
            else None,
        )
    try:
        return parse_json(data)
    except ValueError as exc:
        raise ProblemError(
            400,
            gettext("The body is not valid JSON: %(reason)s.", reason=str(exc)),
            slug="malformed-json",
        ) from exc


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


def _expected_version(current: Settings) -> int | None:
    """The version ``If-Match`` requires, or ``None`` when it is absent or ``*``.

    Our ETags read ``"<user id>.<version>.<registry fingerprint>"``; If-Match compares
    strongly, so weak tags, another user's tags and tags from another registry never match.
    The service compares the version under the row lock after validating the body, so a
    bad body is a 422 whatever If-Match says, and only a valid write can be a 412.
    """
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = parse_etags(header)
    if tags.star_tag:
        return None
    user_id, fingerprint = str(current.user_id), registry.fingerprint()
    versions: set[int] = set()
    for tag in tags.as_set():
        if not tag:
            # Werkzeug parses the empty tag ``""`` as None.
            continue
        tag_user, _, rest = tag.partition(".")
        version, _, tag_fingerprint = rest.partition(".")
        if (
            tag_user == user_id
            and tag_fingerprint == fingerprint
            and version.isascii()
            and version.isdigit()
            and len(version) < 19
        ):
            versions.add(int(version))
    if current.version in versions:
        return current.version
    # Versions only grow, so tags older than the session's snapshot are stale; a newer one
    # means the snapshot trails a write, and the service decides.
    newer = [version for version in versions if version > current.version]
    return min(newer) if newer else NO_VERSION


def _precondition_failed(current: Settings) -> ProblemError:
    """412, carrying the current ETag so the client knows what to fetch."""
    return ProblemError(
        412,
        gettext("The settings changed since you read them. Fetch them again and retry."),
        slug="precondition-failed",
        headers={"ETag": current.etag},
    )


def _account_gone() -> ProblemError:
    """401 for a session whose user was deleted during the request."""
    return ProblemError(401, gettext("Sign in to use the API: no valid session was sent."))
