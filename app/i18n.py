"""Language, direction and time zone of each request, from the user's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel import Locale
from flask import request
from flask_babel import format_datetime, get_locale
from flask_login import current_user

from app.preferences import registry


def select_locale() -> str:
    """The user's language, or the best match for the browser's when signed out."""
    if current_user and current_user.is_authenticated:
        return str(current_user.settings.values["locale"])
    return request.accept_languages.best_match(registry.shipped_locales()) or "en"


def select_timezone() -> str:
    """The user's time zone, UTC when signed out."""
    if current_user and current_user.is_authenticated:
        return str(current_user.settings.values["timezone"])
    return "UTC"


def text_direction(locale: str) -> str:
    """``rtl`` or ``ltr`` for the ``dir`` attribute of ``<html>``."""
    return "rtl" if Locale.parse(locale).character_order == "right-to-left" else "ltr"


def local_time(moment: datetime | None) -> str:
    """A moment in the user's zone and language, medium length, for "last saved at"."""
    return format_datetime(moment, "medium") if moment else ""


def template_context() -> dict[str, Any]:
    """``lang``, ``dir`` and theme for ``<html>``, so the first paint is already right."""
    locale = str(get_locale() or "en")
    theme = "system"
    if current_user and current_user.is_authenticated:
        theme = str(current_user.settings.values["theme"])
    return {"page_locale": locale, "page_dir": text_direction(locale), "page_theme": theme}
