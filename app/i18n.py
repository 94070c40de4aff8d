"""Language, direction and time zone of each request, from the user's settings."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from babel import Locale
from flask import g, request
from flask_babel import format_datetime, get_locale
from flask_login import current_user
from sqlalchemy.exc import DBAPIError

from app.extensions import login_manager
from app.preferences import registry


def viewer() -> Any:
    """The signed-in user, or an anonymous one if the user cannot be loaded.

    Error pages are rendered in the user's language and with the navigation, but a 503 for
    an unreachable database must not fail again while finding out who is asking.
    """
    if "viewer" not in g:
        try:
            user = current_user._get_current_object()
            # Reading an attribute makes Flask-Login load the user now, inside this try.
            _ = user.is_authenticated
        except DBAPIError:
            user = login_manager.anonymous_user()
        g.viewer = user
    return g.viewer


def select_locale() -> Locale:
    """The user's language, or the best match for the browser's when signed out."""
    user = viewer()
    if user.is_authenticated:
        return _locale(str(user.settings.values["locale"]))
    return _locale(request.accept_languages.best_match(registry.shipped_locales()) or "en")


@functools.cache
def _locale(identifier: str) -> Locale:
    """Each language parsed once per process: Flask-Babel parses an identifier the selector
    returns on every request, but takes a ``Locale`` as it is."""
    return Locale.parse(identifier)


def select_timezone() -> str:
    """The user's time zone, UTC when signed out."""
    user = viewer()
    if user.is_authenticated:
        return str(user.settings.values["timezone"])
    return "UTC"


def text_direction(locale: str) -> str:
    """``rtl`` or ``ltr`` for the ``dir`` attribute of ``<html>``."""
    return "rtl" if _locale(locale).character_order == "right-to-left" else "ltr"


def local_time(moment: datetime | None) -> str:
    """A moment in the user's zone and language, medium length, for "last saved at"."""
    return format_datetime(moment, "medium") if moment else ""


def template_context() -> dict[str, Any]:
    """``lang``, ``dir`` and theme for ``<html>``, so the first paint is already right."""
    locale = str(get_locale() or "en")
    user = viewer()
    theme = str(user.settings.values["theme"]) if user.is_authenticated else "system"
    return {
        "page_locale": locale,
        "page_dir": text_direction(locale),
        "page_theme": theme,
        # theme.js applies only these; the registry says which there are.
        "page_themes": " ".join(registry.BY_KEY["theme"].allowed()),
        "viewer": user,
    }
