"""Every preference, defined once; forms, validation, schema and docs are derived from here."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytz
from babel import Locale
from babel.core import get_global

from app.text import gettext, lazy_gettext, ngettext

log = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

#: Version of the document stored in ``users.preferences``; see ``upgrade``.
STORAGE_VERSION = 1
VERSION_FIELD = "_v"

#: Longest string value accepted anywhere; the longest IANA zone name is 32 characters.
MAX_STRING_LENGTH = 64

#: How deep an incoming settings object may nest before it is refused unread.
MAX_DEPTH = 4

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


@cache
def time_zones() -> tuple[str, ...]:
    """IANA zone names every part of the app can use, sorted; computed once per process.

    They come from pytz, a pinned dependency, not from the host's zone files: Flask-Babel
    and Babel format every time with pytz, so a zone it lacks (``Factory``, ``localtime``)
    would break every page, and hosts with different zone files would accept different
    names.
    """
    return tuple(sorted(pytz.all_timezones_set))


@cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zones())


@cache
def canonical_time_zones() -> tuple[str, ...]:
    """The zones people choose from: one per place (zone.tab) and UTC, sorted.

    Legacy aliases (``Turkey``, ``US/Pacific``, ``Asia/Calcutta``) and administrative zones
    (``Etc/GMT+5``, which means UTC-5) are still accepted, but not offered.
    """
    places = {zone for zones in pytz.country_timezones.values() for zone in zones}
    return tuple(sorted((places | {"UTC"}) & _time_zone_set()))


@cache
def _zone_aliases() -> dict[str, str]:
    """Legacy zone names to the canonical zone of the same place (CLDR's list, via Babel)."""
    aliases: Mapping[str, str] = get_global("zone_aliases")
    canonical = set(canonical_time_zones())
    return {alias: zone for alias, zone in aliases.items() if zone in canonical}


def canonical_zone(name: str) -> str:
    """The canonical name of a zone: ``Asia/Calcutta`` reads ``Asia/Kolkata``."""
    return _zone_aliases().get(name, name)


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
            return value in _time_zone_set()
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

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable, or ``None`` if it is."""
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

Errors = dict[str, list[str]]


#: How many keys an error report names; a document with thousands of bad keys gets a
#: report of this size and a count of the rest, not a copy of itself.
MAX_REPORTED_ERRORS = 20


def capped(errors: Errors) -> Errors:
    """``errors`` with at most ``MAX_REPORTED_ERRORS`` keys, and one message for the rest.

    Messages about the document as a whole (key ``""``) are always kept; so is a report
    capped already.
    """
    keys = [key for key in errors if key]
    if len(keys) <= MAX_REPORTED_ERRORS:
        return errors
    kept = {key: errors[key] for key in keys[:MAX_REPORTED_ERRORS]}
    rest = len(keys) - MAX_REPORTED_ERRORS
    more = ngettext(
        "…and %(num)d more problem, not listed.", "…and %(num)d more problems, not listed.", rest
    )
    kept[""] = [*errors.get("", []), more]
    return kept


class ValidationError(Exception):
    """Input that cannot be saved; ``errors`` maps each dotted key to its messages."""

    def __init__(self, errors: Errors) -> None:
        errors = capped(errors)
        super().__init__(errors)
        self.errors = errors


def defaults() -> dict[str, Any]:
    """Every key with its default value, flat and dotted."""
    return {pref.key: pref.default for pref in PREFERENCES}


def _add(errors: Errors, key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counting no further than ``limit``."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def flatten(document: Any, *, allow_null: bool = False) -> tuple[dict[str, Any], Errors]:
    """Turn a settings object as clients send it (groups nested) into dotted keys.

    Structural problems (unknown keys, an object where a value belongs, too deep) are
    reported per dotted key; values are not checked here.
    """
    errors: Errors = {}
    flat: dict[str, Any] = {}
    if not isinstance(document, dict):
        _add(errors, "", gettext("The settings must be a JSON object."))
        return flat, errors
    if _depth(document, MAX_DEPTH + 1) > MAX_DEPTH:
        _add(errors, "", gettext("The settings object is nested too deeply."))
        return flat, errors
    for name, value in document.items():
        if name in GROUPS:
            if value is None and allow_null:
                flat.update(dict.fromkeys(_group_keys(name)))
            elif isinstance(value, dict):
                for child, child_value in value.items():
                    _take(flat, errors, f"{name}.{child}", child_value)
            else:
                _add(errors, name, gettext("Must be an object."))
        elif "." in str(name) or name not in BY_KEY:
            # Clients nest groups; a dotted name at the top level is not part of the format.
            _add(errors, printable(str(name)), gettext("Unknown setting."))
        else:
            _take(flat, errors, str(name), value)
    return flat, errors


def _group_keys(group: str) -> list[str]:
    return [pref.key for pref in PREFERENCES if pref.group == group]


def _take(flat: dict[str, Any], errors: Errors, key: str, value: Any) -> None:
    if key not in BY_KEY:
        _add(errors, printable(key), gettext("Unknown setting."))
    elif isinstance(value, dict | list):
        _add(errors, key, gettext("Must be a single value, not an object or a list."))
    else:
        flat[key] = value


def printable(key: str) -> str:
    """An unknown key as it may be echoed back: bounded, so a huge key is not mirrored."""
    return key if len(key) <= MAX_STRING_LENGTH else key[:MAX_STRING_LENGTH] + "…"


def validate(changes: Mapping[str, Any], *, allow_null: bool = False) -> dict[str, Any]:
    """Check dotted ``changes`` against the registry and return them cleaned.

    With ``allow_null`` a ``None`` value means "back to the default" and is kept as ``None``.

    :raise ValidationError: with every problem found, so a client can fix all at once.
    """
    errors: Errors = {}
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        pref = BY_KEY.get(key)
        if pref is None:
            _add(errors, printable(key), gettext("Unknown setting."))
            continue
        if value is None and allow_null:
            cleaned[key] = None
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problem: str | None = gettext("Must be a finite value.")
        else:
            problem = pref.check(value)
        if problem:
            _add(errors, key, problem)
        else:
            cleaned[key] = pref.normalized(value)
    if errors:
        raise ValidationError(errors)
    return cleaned


def validate_document(document: Any, *, allow_null: bool = False) -> dict[str, Any]:
    """Flatten and validate a nested settings object in one step.

    :raise ValidationError: on any structural or value problem.
    """
    flat, errors = flatten(document, allow_null=allow_null)
    try:
        cleaned = validate(flat, allow_null=allow_null)
    except ValidationError as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(key, []).extend(messages)
        cleaned = {}
    if errors:
        raise ValidationError(errors)
    return cleaned


def validate_keys(keys: Iterable[Any]) -> list[str]:
    """Check a list of dotted keys (for reset); group names expand to their keys.

    :raise ValidationError: for a key that is not a string or not known.
    """
    errors: Errors = {}
    found: list[str] = []
    for key in keys:
        if isinstance(key, str) and key in BY_KEY:
            found.append(key)
        elif isinstance(key, str) and key in GROUPS:
            found.extend(_group_keys(key))
        else:
            _add(errors, printable(str(key)), gettext("Unknown setting."))
    if errors:
        raise ValidationError(errors)
    return list(dict.fromkeys(found))


_reported: set[tuple[str, str]] = set()


def _report_once(key: str, value: Any, problem: str) -> None:
    """Log a stored value that reads as the default, once per process and value."""
    text = repr(value)[:200]
    if (key, text) not in _reported:
        _reported.add((key, text))
        log.warning("Stored %s %s %s; using the default", key or "preferences", text, problem)


def effective(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Settings a reader sees: stored choices that are still valid, defaults for the rest.

    A stored value that is no longer allowed (a removed language, a renamed zone) reads as
    the default and is logged once per process, never raised. Nothing here is translated
    or depends on the request, since the request's language is chosen from the result.
    """
    result = defaults()
    for key, value in stored.items():
        pref = BY_KEY.get(key)
        if pref is None:
            continue
        if pref.accepts(value):
            result[key] = value
        else:
            _report_once(key, value, "is no longer valid")
    return result


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


def upgrade(document: Any) -> dict[str, Any]:
    """Bring a stored preferences document to ``STORAGE_VERSION`` (flat dotted keys).

    Version 0 (no ``_v``) nested groups as objects and allowed ``notifications`` to be a bare
    boolean meaning "all notifications on or off".
    """
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        _report_once("", document, "is not an object")
        return {}
    doc = dict(document)
    version = doc.pop(VERSION_FIELD, 0)
    # ``True`` is an int in Python, but not a version.
    if type(version) is not int or not 0 <= version <= STORAGE_VERSION:
        # A newer release wrote it (or something else did): nothing in it can be trusted.
        _report_once(VERSION_FIELD, version, "is not a storage version this release reads")
        return {}
    if version == 0:
        flat: dict[str, Any] = {}
        for name, value in doc.items():
            if name == "notifications" and isinstance(value, bool):
                flat["notifications.email"] = value
                flat["notifications.push"] = value
            elif isinstance(value, dict):
                flat.update({f"{name}.{child}": inner for child, inner in value.items()})
            else:
                flat[name] = value
        doc = flat
    # Written straight into SQLite, NaN is readable JSON there, but no cache entry or
    # history row can hold it.
    for key in [key for key, value in doc.items() if not _finite(value)]:
        _report_once(key, doc.pop(key), "is not finite")
    return doc


def _finite(value: Any) -> bool:
    """Whether a JSON value holds no NaN or infinity anywhere."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(child) for child in value.values())
    if isinstance(value, list):
        return all(_finite(child) for child in value)
    return True


def stored_document(choices: Mapping[str, Any]) -> dict[str, Any]:
    """The document to store for a user's explicit choices, stamped with its version."""
    return {VERSION_FIELD: STORAGE_VERSION, **choices}


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
