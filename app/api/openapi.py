"""The OpenAPI 3.1 document of the API; the settings bodies come from the registry."""

from __future__ import annotations

from typing import Any

from app.api.problems import MEDIA_TYPE
from app.preferences import schema
from app.preferences.registry import GROUPS, PREFERENCES
from app.preferences.service import EXPORT_FORMAT, EXPORT_VERSION, SOURCES

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"

PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"

#: Every error an operation may answer with, by status; all are problem documents.
ERROR_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "400": ("The body is not valid JSON.", PROBLEM_REF),
    "401": ("No valid session cookie was sent.", PROBLEM_REF),
    "403": ("The X-CSRFToken header is missing or wrong.", PROBLEM_REF),
    "412": ("If-Match does not match the current ETag; nothing was changed.", PROBLEM_REF),
    "413": ("The body is over 16 KiB.", PROBLEM_REF),
    "415": ("The body is not sent as JSON.", PROBLEM_REF),
    "422": ("An unknown key or a bad value; nothing was saved.", VALIDATION_PROBLEM_REF),
    "429": (
        "Too many writes by this user (`RATELIMIT_WRITES`, by default 30 per 10 seconds and "
        "1000 per hour); nothing was saved. Retry after the seconds in Retry-After.",
        PROBLEM_REF,
    ),
    "500": ("Something went wrong on the server.", PROBLEM_REF),
    "503": ("The database is briefly unavailable.", PROBLEM_REF),
}
READ_ERRORS = ("401", "500", "503")
#: The same patterns and limits the views enforce (``app.api.routes``).
CURSOR_PATTERN = "^[0-9a-z]{1,12}$"
IMPORT_ERRORS = ("400", "401", "403", "415", "422", "429", "500", "503")
#: A stored value, as history and imports report it: ``null`` means "the default".
ANY_VALUE = {"type": ["string", "boolean", "null"]}
WRITE_ERRORS = ("400", "401", "403", "412", "413", "415", "422", "429", "500", "503")


def _ref(name: str) -> dict[str, str]:
    """A reference to a reusable component."""
    return {"$ref": f"#/components/{name}"}


def _with_updated_at(settings: dict[str, Any], *, read: bool) -> dict[str, Any]:
    """Add ``updated_at``: required in what we send, optional and ignored in what we receive."""
    updated_at = dict(schema.document_schema()["properties"]["updated_at"], readOnly=True)
    if not read:
        # Writes accept it back as read, so a client can send the document it fetched.
        del updated_at["format"]
        updated_at["description"] = "Ignored on writes: the server sets it."
    settings["properties"]["updated_at"] = updated_at
    if read:
        settings["required"].append("updated_at")
    return settings


def _version_0_settings() -> dict[str, Any]:
    """Settings as version 0 documents held them: nested, ``notifications`` maybe a boolean."""
    settings = schema.settings_schema(partial=True)
    group = settings["properties"]["notifications"]
    settings["properties"]["notifications"] = {
        "anyOf": [group, {"type": "boolean", "description": "Every notification on or off."}]
    }
    return settings


def _export_document(version: int, settings: dict[str, Any]) -> dict[str, Any]:
    """An exported settings document of ``version``."""
    return {
        "type": "object",
        "properties": {
            "format": {"const": EXPORT_FORMAT},
            "version": {"const": version},
            "exported_at": {
                "type": ["string", "null"],
                "description": "When the file was made (UTC); informative only.",
            },
            "settings": settings,
        },
        "required": ["format", "version", "settings"],
        "additionalProperties": False,
    }


def _transfer_schemas() -> dict[str, Any]:
    """History, export and import bodies."""
    return {
        "HistoryItem": {
            "type": "object",
            "properties": {
                "key": {"type": "string", "description": "The dotted key that changed."},
                "old": {**ANY_VALUE, "description": "The stored value before; null: default."},
                "new": {**ANY_VALUE, "description": "The stored value after; null: default."},
                "source": {
                    "type": "string",
                    "description": "Where the change came from: " + ", ".join(SOURCES) + ".",
                },
                "at": {"type": "string", "format": "date-time", "description": "UTC."},
            },
            "required": ["key", "old", "new", "source", "at"],
        },
        "HistoryPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("schemas/HistoryItem")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next, older page; null at the end.",
                },
            },
            "required": ["items", "next_cursor"],
        },
        "ExportDocument": _export_document(EXPORT_VERSION, schema.settings_schema(partial=True)),
        "ImportDocument": {
            "description": "An exported document; older versions are upgraded on import.",
            "oneOf": [
                _ref("schemas/ExportDocument"),
                _export_document(0, _version_0_settings()),
            ],
        },
        "ImportResult": {
            "type": "object",
            "properties": {
                "dry_run": {"type": "boolean"},
                "changed": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string"},
                            "old": ANY_VALUE,
                            "new": ANY_VALUE,
                        },
                        "required": ["key", "old", "new"],
                    },
                },
                "settings": _ref("schemas/Settings"),
            },
            "required": ["dry_run", "changed", "settings"],
        },
    }


def _schemas() -> dict[str, Any]:
    """Body schemas: settings from the registry, reset request, problems."""
    setting_names = [pref.key for pref in PREFERENCES] + sorted(GROUPS)
    return {
        **_transfer_schemas(),
        "Settings": _with_updated_at(schema.settings_schema(), read=True),
        "SettingsUpdate": _with_updated_at(schema.settings_schema(partial=True), read=False),
        "SettingsPatch": _with_updated_at(
            schema.settings_schema(partial=True, nullable=True), read=False
        ),
        "ResetRequest": {
            "type": "object",
            "properties": {
                "keys": {
                    "type": "array",
                    "items": {"type": "string", "enum": setting_names},
                    "description": "Dotted keys or group names to reset; leave out for all.",
                }
            },
            "additionalProperties": False,
        },
        "Problem": {
            "type": "object",
            "description": "An RFC 9457 problem document.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        },
        "ValidationProblem": {
            "allOf": [
                {"$ref": PROBLEM_REF},
                {
                    "type": "object",
                    "properties": {
                        "errors": {
                            "type": "object",
                            "description": "Messages by dotted key; the empty key is the body.",
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        }
                    },
                    "required": ["errors"],
                },
            ]
        },
    }


def _components() -> dict[str, Any]:
    """Reusable schemas, parameters, headers, responses and security schemes."""
    string = {"type": "string"}
    return {
        "schemas": _schemas(),
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
            "CacheControl": {
                "required": True,
                "schema": {"type": "string", "const": "private, no-cache"},
                "description": "Keep a private copy, but revalidate it with If-None-Match.",
            },
        },
        "responses": {
            **{
                status: {
                    "description": description,
                    "content": {MEDIA_TYPE: {"schema": {"$ref": ref}}},
                }
                for status, (description, ref) in ERROR_DESCRIPTIONS.items()
                if status != "429"
            },
            "429": {
                "description": ERROR_DESCRIPTIONS["429"][0],
                "headers": {
                    "Retry-After": {
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "Seconds to wait before writing again.",
                    }
                },
                "content": {MEDIA_TYPE: {"schema": {"$ref": ERROR_DESCRIPTIONS["429"][1]}}},
            },
            "BadQuery": {
                "description": "A query parameter is not valid.",
                "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
            },
            "ImportTooLarge": {
                "description": "The document is over 64 KiB.",
                "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
            },
            "Settings": {
                "description": "The effective settings and their ETag.",
                "headers": {
                    "ETag": _ref("headers/ETag"),
                    "Cache-Control": _ref("headers/CacheControl"),
                },
                "content": {"application/json": {"schema": _ref("schemas/Settings")}},
            },
        },
        "securitySchemes": {
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
        },
    }


def _errors(statuses: tuple[str, ...]) -> dict[str, Any]:
    """References to the problem responses for ``statuses``."""
    return {status: _ref(f"responses/{status}") for status in statuses}


def _write(operation_id: str, summary: str, body: dict[str, Any]) -> dict[str, Any]:
    """A state-changing operation: CSRF, If-Match, the settings back, every error."""
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"session": [], "csrf": []}],
        "parameters": [_ref("parameters/IfMatch")],
        "requestBody": body,
        "responses": {"200": _ref("responses/Settings"), **_errors(WRITE_ERRORS)},
    }


def _json_body(schema_name: str, *media_types: str, required: bool = True) -> dict[str, Any]:
    """A request body of schema ``schema_name`` under each of ``media_types``."""
    return {
        "required": required,
        "content": {media: {"schema": _ref(f"schemas/{schema_name}")} for media in media_types},
    }


def _transfer_paths() -> dict[str, Any]:
    """History, export and import operations."""
    string = {"type": "string"}
    return {
        "/user/settings/history": {
            "get": {
                "operationId": "get_history",
                "summary": "The user's changes, newest first, a page at a time",
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                        "description": "The `next_cursor` of the previous page; opaque.",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "One page of changes.",
                        "content": {"application/json": {"schema": _ref("schemas/HistoryPage")}},
                    },
                    "400": _ref("responses/BadQuery"),
                    **_errors(READ_ERRORS),
                },
            }
        },
        "/user/settings/export": {
            "get": {
                "operationId": "export_settings",
                "summary": "Download the user's explicit choices as a versioned document",
                "responses": {
                    "200": {
                        "description": "The document, as an attachment.",
                        "headers": {
                            "Content-Disposition": {
                                "required": True,
                                "schema": string,
                                "description": 'attachment; filename="settings-<date>.json"',
                            }
                        },
                        "content": {"application/json": {"schema": _ref("schemas/ExportDocument")}},
                    },
                    **_errors(READ_ERRORS),
                },
            }
        },
        "/user/settings/import": {
            "post": {
                "operationId": "import_settings",
                "summary": (
                    "Replace the user's choices with an exported document's (keys it does not "
                    "hold go back to their default); all or nothing"
                ),
                "security": [{"session": [], "csrf": []}],
                "parameters": [
                    {
                        "name": "dry_run",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["0", "1", "false", "true"]},
                        "description": "1 or true: report what would change, change nothing.",
                    }
                ],
                "requestBody": _json_body("ImportDocument", "application/json"),
                "responses": {
                    "200": {
                        "description": "What changed (or would), and the settings after.",
                        "content": {"application/json": {"schema": _ref("schemas/ImportResult")}},
                    },
                    "413": _ref("responses/ImportTooLarge"),
                    **_errors(IMPORT_ERRORS),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document, served at ``/api/openapi.json``."""
    read_security: list[dict[str, list[str]]] = [{"session": []}]
    any_object = {"type": "object"}
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
                "application/problem+json (RFC 9457)."
            ),
        },
        "servers": [{"url": "/api"}],
        "security": read_security,
        "paths": {
            **_transfer_paths(),
            "/user/settings": {
                "get": {
                    "operationId": "get_settings",
                    "summary": "The current settings",
                    "parameters": [_ref("parameters/IfNoneMatch")],
                    "responses": {
                        "200": _ref("responses/Settings"),
                        "304": {
                            "description": "The client's copy is current.",
                            "headers": {
                                "ETag": _ref("headers/ETag"),
                                "Cache-Control": _ref("headers/CacheControl"),
                            },
                        },
                        **_errors(READ_ERRORS),
                    },
                },
                "put": _write(
                    "put_settings",
                    "Save the given keys; the others keep their value",
                    _json_body("SettingsUpdate", "application/json"),
                ),
                "patch": _write(
                    "patch_settings",
                    "JSON Merge Patch: like PUT, and null resets a key or group to its default",
                    _json_body("SettingsPatch", "application/merge-patch+json", "application/json"),
                ),
            },
            "/user/settings/reset": {
                "post": _write(
                    "reset_settings",
                    "Reset every key, or only the keys or groups named, to the default",
                    _json_body("ResetRequest", "application/json", required=False),
                )
            },
            "/user/settings/schema": {
                "get": {
                    "operationId": "get_schema",
                    "summary": "JSON Schema (2020-12) of the settings document",
                    "responses": {
                        "200": {
                            "description": "The schema.",
                            "content": {"application/schema+json": {"schema": any_object}},
                        },
                        **_errors(READ_ERRORS),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "get_openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": any_object}},
                        },
                        **_errors(READ_ERRORS),
                    },
                }
            },
        },
        "components": _components(),
    }
