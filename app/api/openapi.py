"""The OpenAPI 3.1 document of the API: operations, errors, headers; bodies from the registry.

Every limit, page size and header value comes from the constant the code enforces (the
config's defaults, ``app.api.contract``, the importer's limit), so the document follows
the code.
"""

from __future__ import annotations

import json
from typing import Any

from flask_babel import force_locale

from app import config
from app.api import contract
from app.api.openapi_schemas import PROBLEM_REF, VALIDATION_PROBLEM_REF, ref, schemas
from app.http.args import CURSOR_PATTERN, FLAG_VALUES
from app.http.problems import MEDIA_TYPE
from app.logs import VALID_REQUEST_ID
from app.preferences import history, transfer

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
JSON = "application/json"

READ_ERRORS = ("401", "500", "503")
#: The document and its reference page need no session and no database.
PUBLIC_ERRORS = ("500",)

#: Operations by area, in the order the reference page lists them.
TAGS = (
    ("settings", "Read and change the signed-in user's settings."),
    ("history", "The changes made to the settings, newest first."),
    ("transfer", "Move settings between accounts or instances as a versioned JSON document."),
    ("meta", "The documents this API describes itself with; the OpenAPI one is public."),
)
IMPORT_ERRORS = ("400", "401", "403", "415", "422", "429", "500", "503")
WRITE_ERRORS = ("400", "401", "403", "412", "413", "415", "422", "429", "500", "503")


def error_descriptions() -> dict[str, tuple[str, str]]:
    """Every error an operation may answer with, by status; all are problem documents."""
    return {
        "400": ("The body is not valid JSON.", PROBLEM_REF),
        "401": ("No valid session cookie was sent.", PROBLEM_REF),
        "403": ("The X-CSRFToken header is missing or wrong.", PROBLEM_REF),
        "412": ("If-Match does not match the current ETag; nothing was changed.", PROBLEM_REF),
        "413": (f"The body is over {config.MAX_BODY_BYTES // 1024} KiB.", PROBLEM_REF),
        "415": ("The body is not sent as JSON.", PROBLEM_REF),
        "422": ("An unknown key or a bad value; nothing was saved.", VALIDATION_PROBLEM_REF),
        "429": (
            f"Too many writes by this user (`RATELIMIT_WRITES`, by default "
            f"{config.DEFAULT_WRITE_LIMIT.replace(';', ' and')}); nothing was saved. Retry after "
            "the seconds in Retry-After.",
            PROBLEM_REF,
        ),
        "500": ("Something went wrong on the server.", PROBLEM_REF),
        "503": ("The database is briefly unavailable.", PROBLEM_REF),
    }


def _components() -> dict[str, Any]:
    """Reusable schemas, parameters, headers, responses and security schemes."""
    string = {"type": "string"}
    return {
        "schemas": schemas(),
        "parameters": {
            "IfNoneMatch": {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": string,
                "description": "ETags of the copy the client holds; a match gives 304.",
            },
            "IfMatch": {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "schema": string,
                "description": "Write only if the settings still have this ETag (or `*`).",
            },
        },
        "headers": {
            "ETag": {
                "required": True,
                "schema": string,
                "description": 'Version of the settings: `"<user id>.<version>.<schema>"`.',
            },
            "RequestId": {
                "required": True,
                "schema": {"type": "string", "pattern": f"^{VALID_REQUEST_ID.pattern}$"},
                "description": (
                    "The request's id: the X-Request-ID it was sent with when that matches "
                    "the pattern, else a new one. The server's log lines carry it too."
                ),
            },
            "CacheControl": {
                "required": True,
                "schema": {"type": "string", "const": contract.SETTINGS_CACHE_CONTROL},
                "description": "Keep a private copy, but revalidate it with If-None-Match.",
            },
        },
        "responses": _responses(),
        "securitySchemes": _security_schemes(),
    }


def _problem(description: str, schema_ref: str = PROBLEM_REF) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": ref("headers/RequestId")},
        "content": {MEDIA_TYPE: {"schema": {"$ref": schema_ref}}},
    }


def _responses() -> dict[str, Any]:
    """The reusable responses: every error, and the settings with their headers."""
    responses = {status: _problem(*described) for status, described in error_descriptions().items()}
    responses["429"]["headers"]["Retry-After"] = {
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait before writing again.",
    }
    return {
        **responses,
        "BadQuery": _problem("A query parameter is not valid."),
        "ImportTooLarge": _problem(
            f"The document is over {transfer.IMPORT_MAX_BYTES // 1024} KiB."
        ),
        "Settings": {
            "description": "The effective settings and their ETag.",
            "headers": {
                "ETag": ref("headers/ETag"),
                "Cache-Control": ref("headers/CacheControl"),
            },
            "content": {"application/json": {"schema": ref("schemas/Settings")}},
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "session",
            "description": "The session cookie set by signing in at /login.",
        },
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken",
            "description": (
                'The session\'s CSRF token, from `<meta name="csrf-token">` of any page; '
                "required on every write."
            ),
        },
    }


def _errors(statuses: tuple[str, ...]) -> dict[str, Any]:
    """References to the problem responses for ``statuses``."""
    return {status: ref(f"responses/{status}") for status in statuses}


def _write(
    operation_id: str, summary: str, description: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A state-changing operation: CSRF, If-Match, the settings back, every error."""
    return {
        "operationId": operation_id,
        "tags": ["settings"],
        "summary": summary,
        "description": description,
        "security": [{"session": [], "csrf": []}],
        "parameters": [ref("parameters/IfMatch")],
        "requestBody": body,
        "responses": {"200": ref("responses/Settings"), **_errors(WRITE_ERRORS)},
    }


def _json_body(schema_name: str, *media_types: str, required: bool = True) -> dict[str, Any]:
    """A request body of schema ``schema_name`` under each of ``media_types``."""
    return {
        "required": required,
        "content": {media: {"schema": ref(f"schemas/{schema_name}")} for media in media_types},
    }


def _ok(description: str, schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    """A 200 response whose body under ``media`` follows ``schema``."""
    return {"description": description, "content": {media: {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    return {**parameter, "description": description} if description else parameter


def _history_path() -> dict[str, Any]:
    limit = {
        "type": "integer",
        "minimum": 1,
        "maximum": contract.HISTORY_MAX_LIMIT,
        "default": history.HISTORY_PAGE,
    }
    return {
        "get": {
            "operationId": "get_history",
            "tags": ["history"],
            "summary": "The user's changes, newest first, a page at a time",
            "description": (
                "Each change names its dotted key, the stored values before and after (null: "
                "the default) and where it came from. Follow `next_cursor` for older pages."
            ),
            "parameters": [
                _query(
                    "cursor",
                    {"type": "string", "pattern": CURSOR_PATTERN},
                    "The `next_cursor` of the previous page; opaque.",
                ),
                _query("limit", limit, "How many changes one page holds at most."),
            ],
            "responses": {
                "200": _ok("One page of changes.", ref("schemas/HistoryPage")),
                "400": ref("responses/BadQuery"),
                **_errors(READ_ERRORS),
            },
        }
    }


def _export_path() -> dict[str, Any]:
    attachment = {
        "required": True,
        "schema": {"type": "string"},
        "description": 'attachment; filename="settings-<date>.json"',
    }
    document = _ok("The document, as an attachment.", ref("schemas/ExportDocument"))
    return {
        "get": {
            "operationId": "export_settings",
            "tags": ["transfer"],
            "summary": "Download the user's explicit choices as a versioned document",
            "description": (
                "Only the keys the user chose; defaults stay out, so an import elsewhere "
                "follows that instance's defaults."
            ),
            "responses": {
                "200": {**document, "headers": {"Content-Disposition": attachment}},
                **_errors(READ_ERRORS),
            },
        }
    }


def _import_path() -> dict[str, Any]:
    dry_run = _query(
        "dry_run",
        {"type": "string", "enum": sorted(FLAG_VALUES)},
        "1 or true: report what would change, change nothing.",
    )
    return {
        "post": {
            "operationId": "import_settings",
            "tags": ["transfer"],
            "summary": "Replace the user's choices with an exported document's",
            "description": (
                "Keys the document does not hold go back to their default. All or nothing: "
                "one bad value refuses the whole document and changes nothing. Documents of "
                "older versions are upgraded first."
            ),
            "security": [{"session": [], "csrf": []}],
            "parameters": [dry_run],
            "requestBody": _json_body("ImportDocument", "application/json"),
            "responses": {
                "200": _ok(
                    "What changed (or would), and the settings after.", ref("schemas/ImportResult")
                ),
                "413": ref("responses/ImportTooLarge"),
                **_errors(IMPORT_ERRORS),
            },
        }
    }


def _settings_path() -> dict[str, Any]:
    not_modified = {
        "description": "The client's copy is current.",
        "headers": {"ETag": ref("headers/ETag"), "Cache-Control": ref("headers/CacheControl")},
    }
    return {
        "get": {
            "operationId": "get_settings",
            "tags": ["settings"],
            "summary": "The current settings",
            "description": (
                "Every key with its effective value (the default unless the user chose), plus "
                "`updated_at`. Send the ETag back in If-None-Match to get 304 while it holds."
            ),
            "parameters": [ref("parameters/IfNoneMatch")],
            "responses": {
                "200": ref("responses/Settings"),
                "304": not_modified,
                **_errors(READ_ERRORS),
            },
        },
        "put": _write(
            "put_settings",
            "Save the given keys; the others keep their value",
            "All or nothing: an unknown key or a bad value refuses the body with 422 and "
            "saves nothing. `updated_at` may be sent back as read and is ignored.",
            _json_body("SettingsUpdate", "application/json"),
        ),
        "patch": _write(
            "patch_settings",
            "Change settings with a JSON Merge Patch",
            "Like PUT, and `null` resets a key, or a whole group, to its default (RFC 7396).",
            _json_body("SettingsPatch", "application/merge-patch+json", "application/json"),
        ),
    }


def _document_path(
    operation_id: str,
    summary: str,
    description: str,
    media: str,
    *,
    public: bool = False,
) -> dict[str, Any]:
    """A read-only document the API describes itself with; ``public`` needs no session."""
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": ["meta"],
        "summary": summary,
        "description": description,
        "responses": {
            "200": _ok(summary + ".", {"type": "object"}, media),
            **_errors(PUBLIC_ERRORS if public else READ_ERRORS),
        },
    }
    if public:
        operation["security"] = []
    return {"get": operation}


def _paths() -> dict[str, Any]:
    reset = _write(
        "reset_settings",
        "Reset settings to their defaults",
        "Every key, or only the keys or groups named in `keys`; the full settings after.",
        _json_body("ResetRequest", "application/json", required=False),
    )
    return {
        "/user/settings": _settings_path(),
        "/user/settings/reset": {"post": reset},
        "/user/settings/history": _history_path(),
        "/user/settings/export": _export_path(),
        "/user/settings/import": _import_path(),
        "/user/settings/schema": _document_path(
            "get_schema",
            "The JSON Schema of the settings document",
            "JSON Schema 2020-12, with each key's allowed values, default and description.",
            "application/schema+json",
        ),
        "/openapi.json": _document_path(
            "get_openapi",
            "The OpenAPI document of this API",
            "This document: public, in English, and the same on every host. The reference "
            "page at /api/docs renders it.",
            "application/json",
            public=True,
        ),
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document, served at ``/api/openapi.json`` and in ``docs/``.

    English whoever asks: it is a contract for code generators, so the same for everyone.
    """
    with force_locale("en"):
        return _document()


def serialised() -> str:
    """The document as committed in ``docs/openapi.json``: pretty, sorted, newline-ended."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _document() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "User settings API",
            "version": API_VERSION,
            "description": (
                "The signed-in user's settings. Authenticate with the session cookie; send "
                "the CSRF token in X-CSRFToken on every write. Reads carry an ETag: send it "
                "back in If-None-Match for a 304, or in If-Match so a write fails with 412 "
                "instead of overwriting a change made elsewhere. Errors are "
                "application/problem+json (RFC 9457), and carry the request's `request_id`, "
                "which every response also sends in X-Request-ID."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/api", "description": "This instance, wherever it is served."}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "security": [{"session": []}],
        "paths": _paths(),
        "components": _components(),
    }
