"""Request bodies as JSON, read strictly: the media type, the encoding, every value."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import request

from app.text import gettext

JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/merge-patch+json", "application/json"})

#: What ``read_json`` returns for an empty body that was allowed to be empty.
NO_BODY: Any = object()


class BadBody(Exception):
    """A body that cannot be read as the JSON asked for: ``status`` 415 or 400, and why."""

    def __init__(self, status: int, detail: str, *, accepted: frozenset[str]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.accepted = accepted


def parse_json(data: bytes) -> Any:
    """Parse JSON strictly: no ``NaN``, no repeated member names, numbers as ``Decimal``.

    :raise ValueError: with a message saying what is wrong and where.
    """
    try:
        # Decimal keeps 1e999 finite; no float is a valid value, so validation refuses it.
        return json.loads(
            data.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_float=Decimal,
            object_pairs_hook=_unique_members,
        )
    except json.JSONDecodeError as exc:
        reason = _syntax_error(exc)
    except UnicodeDecodeError:
        reason = gettext("the body is not UTF-8")
    except RecursionError:
        reason = gettext("it is nested too deeply")
    except ValueError as exc:
        reason = str(exc)
    raise ValueError(reason)


def _syntax_error(error: json.JSONDecodeError) -> str:
    """What is wrong and where, in the user's language: Python's parser speaks only English."""
    where = {"line": error.lineno, "column": error.colno}
    if error.msg.startswith("Expecting value"):
        return gettext("a value is missing at line %(line)d, column %(column)d", **where)
    if error.msg.startswith("Expecting property name"):
        return gettext(
            "a member name in double quotes is expected at line %(line)d, column %(column)d",
            **where,
        )
    if error.msg.startswith(("Expecting ',' delimiter", "Expecting ':' delimiter")):
        return gettext("a comma or colon is missing at line %(line)d, column %(column)d", **where)
    if error.msg.startswith("Extra data"):
        return gettext(
            "more text follows the end of the JSON at line %(line)d, column %(column)d", **where
        )
    if error.msg.startswith("Unterminated string"):
        return gettext(
            "a string is not closed; it starts at line %(line)d, column %(column)d", **where
        )
    # Python 3.13 names a trailing comma; older versions expect a value or a name there.
    if error.msg.startswith("Illegal trailing comma"):
        return gettext(
            "a comma is followed by no value at line %(line)d, column %(column)d", **where
        )
    if error.msg.startswith(("Invalid \\escape", "Invalid \\u", "Invalid control character")):
        return gettext(
            "a string holds an escape or character JSON does not allow at line %(line)d, "
            "column %(column)d",
            **where,
        )
    return gettext("the JSON is malformed at line %(line)d, column %(column)d", **where)


def _reject_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON, though Python's parser accepts them."""
    raise ValueError(gettext("%(name)s is not a JSON value", name=name))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object from its members; a repeated name is ambiguous, so it is refused."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError(gettext("an object repeats a member name"))
    return document


def read_json(accepted: frozenset[str], *, optional: bool = False) -> Any:
    """The request body parsed as JSON, or ``NO_BODY`` when ``optional`` and there is none.

    A chunked body has already been read whole and measured (``app.http.bodies``).

    :raise 413: the body is over the endpoint's limit (raised by Werkzeug while reading).
    :raise BadBody: 415 for a media type other than ``accepted``, 400 for bad JSON.
    """
    data = request.get_data(cache=False)
    if optional and not data.strip():
        return NO_BODY
    if request.mimetype not in accepted:
        raise BadBody(
            415,
            gettext(
                "The body must be JSON, sent with one of these types: %(types)s.",
                types=", ".join(sorted(accepted)),
            ),
            accepted=accepted,
        )
    try:
        return parse_json(data)
    except ValueError as exc:
        raise BadBody(
            400,
            gettext("The body is not valid JSON: %(reason)s.", reason=str(exc)),
            accepted=accepted,
        ) from exc
