"""Typed wrappers of Flask-Babel's message functions, which ship no type information."""

from __future__ import annotations

from typing import Any

from babel.lists import format_list
from flask_babel import get_locale
from flask_babel import gettext as _gettext
from flask_babel import lazy_gettext as _lazy_gettext
from flask_babel import lazy_pgettext as _lazy_pgettext
from flask_babel import ngettext as _ngettext
from flask_babel import pgettext as _pgettext


def gettext(string: str, **variables: Any) -> str:
    """Translate ``string`` into the request's language."""
    return str(_gettext(string, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Translate a message that depends on a count."""
    return str(_ngettext(singular, plural, num, **variables))


def lazy_gettext(string: str, **variables: Any) -> Any:
    """A translation evaluated when rendered, for labels defined at import time."""
    return _lazy_gettext(string, **variables)


def pgettext(context: str, string: str, **variables: Any) -> str:
    """Translate ``string`` in ``context``, for one English word that means two things."""
    return str(_pgettext(context, string, **variables))


def lazy_pgettext(context: str, string: str, **variables: Any) -> Any:
    """``pgettext`` evaluated when rendered, for labels defined at import time."""
    return _lazy_pgettext(context, string, **variables)


def alternatives(items: list[str]) -> str:
    """``items`` as a list of choices in the request's language: "Light, Dark, or System"."""
    return format_list(items, style="or", locale=get_locale() or "en")
