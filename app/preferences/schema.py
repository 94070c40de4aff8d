"""JSON Schema, OpenAPI component and Markdown reference, all derived from the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import force_locale

from app.preferences.registry import PREFERENCES, Preference
from app.preferences.zones import time_zones

SCHEMA_ID = "/api/user/settings/schema"


def allowed_schema(pref: Preference) -> dict[str, Any]:
    """The type and allowed values of one preference, without its words."""
    if pref.type == "boolean":
        return {"type": "boolean"}
    return {"type": "string", "enum": list(pref.allowed())}


def _value_schema(
    pref: Preference, *, nullable: bool = False, ref: str | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": ref} if ref else allowed_schema(pref)
    schema.update(
        title=str(pref.label),
        description=str(pref.help),
        default=pref.default,
    )
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}], "description": schema["description"]}
    return schema


def settings_schema(
    *, partial: bool = False, nullable: bool = False, refs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A 2020-12 JSON Schema of the settings object, groups nested as the API speaks them.

    :param partial: no key is required (the body of ``PUT`` and ``PATCH``).
    :param nullable: a ``null`` may stand for any key or group (JSON Merge Patch).
    :param refs: a ``$ref`` to use for a key's allowed values instead of listing them (the
        OpenAPI document lists the zones once).
    """
    refs = refs or {}
    properties: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for pref in PREFERENCES:
        if pref.group:
            group = groups.setdefault(
                pref.group,
                {"type": "object", "properties": {}, "additionalProperties": False},
            )
            group["properties"][pref.name] = _value_schema(
                pref, nullable=nullable, ref=refs.get(pref.key)
            )
            if not partial:
                group.setdefault("required", []).append(pref.name)
            properties[pref.group] = group
        else:
            properties[pref.key] = _value_schema(pref, nullable=nullable, ref=refs.get(pref.key))
    if nullable:
        for name, group in groups.items():
            properties[name] = {"anyOf": [group, {"type": "null"}]}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if not partial:
        schema["required"] = list(properties)
    return schema


def document_schema() -> dict[str, Any]:
    """The schema served at ``/api/user/settings/schema``: settings plus ``updated_at``."""
    schema = settings_schema()
    schema["properties"]["updated_at"] = {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "When the user last changed a setting (UTC), or null if never.",
    }
    schema["required"].append("updated_at")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "User settings",
        **schema,
    }


def _allowed_text(pref: Preference) -> str:
    if pref.type == "boolean":
        return "`true`, `false`"
    if pref.options is time_zones:
        return "any IANA time zone name in the pinned pytz database (for example `Europe/Berlin`)"
    return ", ".join(f"`{value}`" for value in pref.allowed())


def _default_text(pref: Preference) -> str:
    if isinstance(pref.default, bool):
        return f"`{str(pref.default).lower()}`"
    return f"`{pref.default}`"


def markdown_reference() -> str:
    """The key reference written to ``docs/preferences.md`` by ``flask preferences docs``."""
    with force_locale("en"):
        lines = [
            "# Preference keys",
            "",
            "Generated from `app/preferences/registry.py` by `flask preferences docs`; do not",
            "edit by hand. A test fails when this file and the registry disagree.",
            "",
            "| key | type | allowed | default | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines.extend(
            f"| `{pref.key}` | {pref.type} | {_allowed_text(pref)} | {_default_text(pref)} "
            f"| {pref.label}: {pref.help} |"
            for pref in PREFERENCES
        )
    lines.extend(
        [
            "",
            "Dotted keys name a member of a group: the API nests them, so",
            '`notifications.digest` is `{"notifications": {"digest": ...}}` in JSON.',
            "",
        ]
    )
    return "\n".join(lines)
