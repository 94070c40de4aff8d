"""Checking what people send against the registry: one entry point per shape of input.

Messages are built here, in the request's language, and only here: reading stored settings
(``storage``) never needs one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from app.preferences.registry import BY_KEY, GROUPS, MAX_STRING_LENGTH, PREFERENCES
from app.text import gettext, ngettext

#: How deep an incoming settings object may nest before it is refused unread.
MAX_DEPTH = 4

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
    """Input that cannot be saved; ``errors`` maps each dotted key to its messages.

    ``page_wording`` holds, for the keys a page words differently, the messages to show
    there: a refused choice names the allowed ones by their labels, not their values.
    """

    def __init__(self, errors: Errors, page_wording: Errors | None = None) -> None:
        errors = capped(errors)
        super().__init__(errors)
        self.errors = errors
        self.page_wording = page_wording or {}

    def for_pages(self) -> Errors:
        """``errors`` as a page shows them."""
        return {key: self.page_wording.get(key, texts) for key, texts in self.errors.items()}


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
    page_wording: Errors = {}
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
            if pref.option_label:
                _add(page_wording, key, pref.check(value, by_label=True) or problem)
        else:
            cleaned[key] = pref.normalized(value)
    if errors:
        raise ValidationError(errors, page_wording)
    return cleaned


def validate_document(document: Any, *, allow_null: bool = False) -> dict[str, Any]:
    """Flatten and validate a nested settings object in one step.

    :raise ValidationError: on any structural or value problem.
    """
    flat, errors = flatten(document, allow_null=allow_null)
    page_wording: Errors = {}
    try:
        cleaned = validate(flat, allow_null=allow_null)
    except ValidationError as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(key, []).extend(messages)
        page_wording = exc.page_wording
        cleaned = {}
    if errors:
        raise ValidationError(errors, page_wording)
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
