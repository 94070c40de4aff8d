"""Preference changes as people read them: labels, display values, where they came from.

Shared by the settings page (history, import preview) and the admin pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import get_timezone_location
from flask_babel import get_locale

from app.preferences import registry, zones
from app.preferences.service import Change
from app.text import gettext, lazy_gettext

#: How many changes the settings page lists.
RECENT = 10

#: The name of each ``source`` of a change, in the reader's language.
SOURCE_LABELS: dict[str, Any] = {
    "page": lazy_gettext("Settings page"),
    "dashboard": lazy_gettext("Dashboard"),
    "api": lazy_gettext("API"),
    "reset": lazy_gettext("Reset"),
    "import": lazy_gettext("Import"),
    "admin": lazy_gettext("Administrator"),
    "cli": lazy_gettext("Command line"),
    "other": lazy_gettext("Other"),
}


@dataclass(frozen=True)
class ChangeRow:
    """One change ready for a template: every text already in the reader's language."""

    key: str
    label: str
    old: str
    new: str
    source: str
    at: datetime | None


def display_value(key: str, value: Any) -> str:
    """A stored value as the settings page names it; ``None`` reads as the default."""
    pref = registry.BY_KEY.get(key)
    if value is None:
        if pref is None:
            return gettext("Default")
        return gettext("Default (%(value)s)", value=display_value(key, pref.default))
    if isinstance(value, bool):
        return gettext("On") if value else gettext("Off")
    text = str(value)
    if pref is not None and pref.options is zones.time_zones and pref.is_allowed(text):
        # The place as the settings page names it (its offset changes, so it is left out).
        return get_timezone_location(zones.canonical_zone(text), str(get_locale()), True)
    if pref is not None and pref.is_allowed(text):
        return pref.label_for(text).replace("_", " ")
    # A value no longer allowed (a removed language) is shown as stored.
    return text


def rows(changes: list[Change]) -> list[ChangeRow]:
    """Template rows for ``changes``, in the same order."""
    return [
        ChangeRow(
            key=change.key,
            label=str(registry.BY_KEY[change.key].label)
            if change.key in registry.BY_KEY
            else change.key,
            old=display_value(change.key, change.old),
            new=display_value(change.key, change.new),
            source=str(SOURCE_LABELS.get(change.source, change.source)),
            at=change.at,
        )
        for change in changes
    ]
