"""Typed wrappers of Flask-Babel's message functions, which ship no type information."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _gettext
from flask_babel import lazy_gettext as _lazy_gettext
from flask_babel import ngettext as _ngettext


def gettext(string: str, **variables: Any) -> str:
    """Translate ``string`` into the request's language."""
    return str(_gettext(string, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Translate a message that depends on a count."""
    return str(_ngettext(singular, plural, num, **variables))


def lazy_gettext(string: str, **variables: Any) -> Any:
    """A translation evaluated when rendered, for labels defined at import time."""
    return _lazy_gettext(string, **variables)
