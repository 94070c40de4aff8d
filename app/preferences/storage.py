"""Reading what ``users.preferences`` holds: old formats upgraded, bad values as defaults.

Nothing here is translated or depends on the request: the request's language is chosen
from what this returns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from app.preferences.registry import BY_KEY, defaults

log = logging.getLogger(__name__)

#: Version of the document stored in ``users.preferences``; see ``upgrade``.
STORAGE_VERSION = 1
VERSION_FIELD = "_v"

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
