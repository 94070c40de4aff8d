"""The body schemas of the OpenAPI document: settings from the registry, history, transfer.

Each preference's allowed values appear once: a value with many (the time zones) is one
component that every settings schema refers to.
"""

from __future__ import annotations

from typing import Any

from app.logs import VALID_REQUEST_ID
from app.preferences import schema
from app.preferences.history import SOURCES
from app.preferences.registry import BY_KEY, GROUPS, PREFERENCES
from app.preferences.transfer import EXPORT_FORMAT, EXPORT_VERSION

PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"
#: Keys whose allowed values are a component of their own, by component name.
SHARED_VALUES = {"timezone": "TimeZone"}
#: A stored value, as history and imports report it: ``null`` means "the default".
ANY_VALUE = {"type": ["string", "boolean", "null"]}


def ref(name: str) -> dict[str, str]:
    """A reference to a reusable component."""
    return {"$ref": f"#/components/{name}"}


def _settings(*, partial: bool = False, nullable: bool = False) -> dict[str, Any]:
    refs = {key: f"#/components/schemas/{name}" for key, name in SHARED_VALUES.items()}
    return schema.settings_schema(partial=partial, nullable=nullable, refs=refs)


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
    settings = _settings(partial=True)
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


def _history_schemas() -> dict[str, Any]:
    return {
        "HistoryItem": {
            "type": "object",
            "properties": {
                "key": {"type": "string", "description": "The dotted key that changed."},
                "old": {**ANY_VALUE, "description": "The stored value before; null: default."},
                "new": {**ANY_VALUE, "description": "The stored value after; null: default."},
                "source": {
                    "type": "string",
                    "enum": list(SOURCES),
                    "description": "Where the change came from.",
                },
                "at": {"type": "string", "format": "date-time", "description": "UTC."},
            },
            "required": ["key", "old", "new", "source", "at"],
        },
        "HistoryPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref("schemas/HistoryItem")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next, older page; null at the end.",
                },
            },
            "required": ["items", "next_cursor"],
        },
    }


def _transfer_schemas() -> dict[str, Any]:
    change = {
        "type": "object",
        "properties": {"key": {"type": "string"}, "old": ANY_VALUE, "new": ANY_VALUE},
        "required": ["key", "old", "new"],
    }
    return {
        "ExportDocument": _export_document(EXPORT_VERSION, _settings(partial=True)),
        "ImportDocument": {
            "description": "An exported document; older versions are upgraded on import.",
            "oneOf": [ref("schemas/ExportDocument"), _export_document(0, _version_0_settings())],
        },
        "ImportResult": {
            "type": "object",
            "properties": {
                "dry_run": {"type": "boolean"},
                "changed": {"type": "array", "items": change},
                "settings": ref("schemas/Settings"),
            },
            "required": ["dry_run", "changed", "settings"],
        },
    }


def _problem_schemas() -> dict[str, Any]:
    return {
        "Problem": {
            "type": "object",
            "description": "An RFC 9457 problem document.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "request_id": {
                    "type": "string",
                    "pattern": f"^{VALID_REQUEST_ID.pattern}$",
                    "description": (
                        "The request's id, as in its X-Request-ID response header and in the "
                        "server's log lines; quote it when reporting the problem."
                    ),
                },
            },
            "required": ["type", "title", "status", "detail", "request_id"],
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
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        }
                    },
                    "required": ["errors"],
                },
            ]
        },
    }


def schemas() -> dict[str, Any]:
    """Every body schema of the document."""
    setting_names = [pref.key for pref in PREFERENCES] + sorted(GROUPS)
    shared = {
        name: {**schema.allowed_schema(BY_KEY[key]), "description": str(BY_KEY[key].help)}
        for key, name in SHARED_VALUES.items()
    }
    return {
        **shared,
        **_history_schemas(),
        **_transfer_schemas(),
        **_problem_schemas(),
        "Settings": _with_updated_at(_settings(), read=True),
        "SettingsUpdate": _with_updated_at(_settings(partial=True), read=False),
        "SettingsPatch": _with_updated_at(_settings(partial=True, nullable=True), read=False),
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
    }
