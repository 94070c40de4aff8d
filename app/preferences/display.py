"""Preference changes as people read them: labels, display values, where they came from.

Shared by the settings page (history, import preview) and the admin pages, so each shows
a change the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel import Locale
from flask_babel import get_locale

from app.preferences import registry, zones
from app.preferences.history import SOURCES, Change
from app.text import gettext


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
        # As the settings page names it (its offset changes, so it is left out).
        return zones.zone_label(zones.canonical_zone(text), Locale.parse(str(get_locale())))
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
            source=str(SOURCES.get(change.source, change.source)),
            at=change.at,
        )
        for change in changes
    ]
