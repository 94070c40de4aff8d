"""Every preference, defined once; forms, validation, schema and docs are derived from here.

The rest of the core builds on these entries: ``validation`` checks what people send,
``storage`` reads what rows hold, ``zones`` knows the time zones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from babel import Locale

from app.preferences.zones import canonical_zone, is_time_zone, time_zones
from app.text import alternatives, gettext, lazy_gettext

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

#: Longest string value accepted anywhere; the longest IANA zone name is 32 characters.
MAX_STRING_LENGTH = 64

PreferenceType = Literal["choice", "string", "boolean"]


@cache
def shipped_locales() -> tuple[str, ...]:
    """Languages with a complete catalogue under ``app/translations``, English first."""
    found = sorted(
        path.parent.parent.name
        for path in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po")
        if path.parent.parent.name != "en"
    )
    return ("en", *found)


def locale_name(code: str) -> str:
    """A language's name in that language ("Deutsch", "日本語"), as people look for it."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def _theme_label(value: str) -> str:
    return {"light": gettext("Light"), "dark": gettext("Dark"), "system": gettext("System")}[value]


def _digest_label(value: str) -> str:
    return {"off": gettext("Off"), "daily": gettext("Daily"), "weekly": gettext("Weekly")}[value]


@dataclass(frozen=True)
class Preference:
    """One user-facing preference: its dotted key, type, allowed values and default."""

    key: str
    type: PreferenceType
    default: Any
    label: Any
    help: Any
    #: Allowed values in display order; a function so large lists are built once, lazily.
    options: Callable[[], tuple[str, ...]] | None = None
    #: The human name of one allowed value, in the current language.
    option_label: Callable[[str], str] | None = None

    @property
    def group(self) -> str | None:
        """The object a dotted key nests under in JSON (``notifications``), if any."""
        head, dot, _ = self.key.partition(".")
        return head if dot else None

    @property
    def name(self) -> str:
        """The key's last segment, its name inside its group."""
        return self.key.rpartition(".")[2]

    @property
    def field_name(self) -> str:
        """The key as an HTML form field name (dots would confuse selectors)."""
        return self.key.replace(".", "__")

    def allowed(self) -> tuple[str, ...]:
        """Allowed values, or an empty tuple for booleans."""
        return self.options() if self.options else ()

    def is_allowed(self, value: str) -> bool:
        """Whether ``value`` is one of the allowed values (fast for time zones)."""
        if self.options is time_zones:
            return is_time_zone(value)
        return value in self.allowed()

    def label_for(self, value: str) -> str:
        """Display name of an allowed value."""
        return self.option_label(value) if self.option_label else value

    def normalized(self, value: Any) -> Any:
        """The form of an accepted value that is stored: zones by their canonical name."""
        return canonical_zone(value) if self.options is time_zones else value

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` may be stored; builds no message, so it never needs a locale.

        Reading settings calls this for every stored choice, also while the request's
        language is being worked out from those very settings.
        """
        if self.type == "boolean":
            return isinstance(value, bool)
        return isinstance(value, str) and len(value) <= MAX_STRING_LENGTH and self.is_allowed(value)

    def check(self, value: Any, *, by_label: bool = False) -> str | None:
        """Return why ``value`` is not acceptable, or ``None`` if it is.

        :param by_label: name the allowed values as people see them ("Light, Dark"), for a
            page; clients of the API need the values themselves ("light, dark").
        """
        if self.accepts(value):
            return None
        if self.type == "boolean":
            return gettext("Must be true or false.")
        if not isinstance(value, str):
            return gettext("Must be a string.")
        if len(value) > MAX_STRING_LENGTH:
            return gettext("Must be at most %(count)d characters long.", count=MAX_STRING_LENGTH)
        if self.options is time_zones:
            return gettext(
                "Unknown time zone %(value)s; use an IANA name such as Europe/Berlin.",
                value=json.dumps(value),
            )
        if by_label:
            labels = alternatives([self.label_for(choice) for choice in self.allowed()])
            return gettext("Must be one of: %(allowed)s.", allowed=labels)
        return gettext("Must be one of: %(allowed)s.", allowed=", ".join(self.allowed()))


PREFERENCES: tuple[Preference, ...] = (
    Preference(
        key="theme",
        type="choice",
        default="system",
        label=lazy_gettext("Theme"),
        help=lazy_gettext("Light or dark colours, or follow your device's setting."),
        options=lambda: ("light", "dark", "system"),
        option_label=_theme_label,
    ),
    Preference(
        key="locale",
        type="choice",
        default="en",
        label=lazy_gettext("Language"),
        help=lazy_gettext("The language of the interface."),
        options=shipped_locales,
        option_label=locale_name,
    ),
    Preference(
        key="timezone",
        type="string",
        default="UTC",
        label=lazy_gettext("Time zone"),
        help=lazy_gettext("Times are shown in this zone."),
        options=time_zones,
    ),
    Preference(
        key="notifications.email",
        type="boolean",
        default=True,
        label=lazy_gettext("Email notifications"),
        help=lazy_gettext("Send me an email when something needs my attention."),
    ),
    Preference(
        key="notifications.push",
        type="boolean",
        default=False,
        label=lazy_gettext("Push notifications"),
        help=lazy_gettext("Notify me in the browser and on my devices."),
    ),
    Preference(
        key="notifications.digest",
        type="choice",
        default="weekly",
        label=lazy_gettext("Summary email"),
        help=lazy_gettext("A digest of activity, sent on this schedule."),
        options=lambda: ("off", "daily", "weekly"),
        option_label=_digest_label,
    ),
)

BY_KEY: dict[str, Preference] = {pref.key: pref for pref in PREFERENCES}
BY_FIELD_NAME: dict[str, Preference] = {pref.field_name: pref for pref in PREFERENCES}
GROUPS: frozenset[str] = frozenset(pref.group for pref in PREFERENCES if pref.group)


def defaults() -> dict[str, Any]:
    """Every key with its default value, flat and dotted."""
    return {pref.key: pref.default for pref in PREFERENCES}


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to the nested shape the API speaks (``notifications`` as an object)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        head, dot, tail = key.partition(".")
        if dot:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[key] = value
    return nested


@cache
def fingerprint() -> str:
    """A short hash of keys, defaults and allowed values; part of every ETag.

    Changing a default changes what users who never chose see, so cached copies held by
    clients must not validate any more.
    """
    material = [(p.key, p.type, p.default, _allowed_material(p)) for p in PREFERENCES]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:10]


def _allowed_material(pref: Preference) -> Any:
    """What of ``pref``'s allowed values the fingerprint covers: only what the code defines.

    The zone list comes from a dependency that an upgrade may change; hashing it would give
    two hosts (or one host before and after an upgrade) different ETags for the same data.
    """
    if pref.options is time_zones:
        return "iana-time-zones"
    return pref.allowed()
