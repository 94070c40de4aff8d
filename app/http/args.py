"""Query arguments, read by one set of rules: whole numbers, flags, ids and cursors."""

from __future__ import annotations

import re

from flask import request

from app.models import MAX_ID
from app.text import gettext

#: History cursors are the last id of a page in base 36: opaque, short, URL-safe. The
#: OpenAPI document publishes the same pattern, searched with the same (Python) semantics.
CURSOR_PATTERN = "^[0-9a-z]{1,12}$"
CURSOR_BASE = 36
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

#: Flag values, false ones first.
FLAG_VALUES = {"0": False, "false": False, "1": True, "true": True}


class BadArgument(Exception):
    """A query argument that is not what it must be; ``name`` says which, ``slug`` the kind."""

    def __init__(self, name: str, detail: str, slug: str) -> None:
        super().__init__(detail)
        self.name = name
        self.detail = detail
        self.slug = slug


def encode_cursor(last_id: int) -> str:
    """The cursor of the page after the entry ``last_id``."""
    text = ""
    while True:
        last_id, digit = divmod(last_id, CURSOR_BASE)
        text = _DIGITS[digit] + text
        if not last_id:
            return text


def cursor(name: str = "cursor") -> int | None:
    """The id a cursor argument stands for, or ``None`` for the first page.

    :raise BadArgument: a cursor this app did not hand out.
    """
    raw = request.args.get(name)
    if raw is None:
        return None
    if not re.search(CURSOR_PATTERN, raw):
        raise BadArgument(
            name,
            gettext("The cursor is not valid: use the next_cursor of a previous page."),
            "bad-cursor",
        )
    # Ids are 32-bit; a larger cursor is past every entry, which is where the list starts.
    return min(int(raw.strip(), CURSOR_BASE), MAX_ID)


def whole_number(name: str, default: int, maximum: int) -> int:
    """A whole number from 1 to ``maximum``; ``default`` when absent.

    :raise BadArgument: anything else.
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= maximum):
        raise BadArgument(
            name,
            gettext("The limit must be a whole number from 1 to %(max)d.", max=maximum),
            "bad-limit",
        )
    return int(raw)


def flag(name: str) -> bool:
    """A yes/no argument: ``1``, ``true``, ``0`` or ``false``; false when absent.

    :raise BadArgument: any other value.
    """
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw not in FLAG_VALUES:
        slug = "bad-" + name.replace("_", "-")
        raise BadArgument(name, gettext("%(name)s must be 1, true, 0 or false.", name=name), slug)
    return FLAG_VALUES[raw]


def lenient_id(name: str) -> int | None:
    """A row id from a link the app made (``?before=``), or ``None`` for anything else.

    Pages are forgiving where the API is strict: a wrong value shows the first page. An id
    past the column's range reads as the largest, never reaching the database as an error.
    """
    raw = request.args.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        return None
    return min(int(raw), MAX_ID)


def lenient_page(name: str = "page") -> int:
    """A page number from a link, 1 when absent or not a positive whole number."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 else 1
