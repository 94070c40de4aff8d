"""Per-user limits on writes, shared by every adapter that saves settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g
from flask_login import current_user
from werkzeug.exceptions import TooManyRequests

from app.preferences import budget

View = TypeVar("View", bound=Callable[..., Any])


def settings_writes(view: View) -> View:
    """One budget for every write of a user's settings: API, settings page, imports.

    Counted per signed-in user with the write's tombstone (``app.preferences.budget``), so
    only valid writes count, and a refused one writes nothing. Over the limit
    (``RATELIMIT_WRITES``) the answer is 429 with ``Retry-After``.
    """

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        limits = str(current_app.config["RATELIMIT_WRITES"])
        with budget.charged_to(int(current_user.id), limits):
            try:
                return view(*args, **kwargs)
            except budget.Exhausted as exhausted:
                g.retry_after = exhausted.retry_after
                raise TooManyRequests() from exhausted

    return cast(View, limited)


def retry_after() -> int | None:
    """Seconds until the limit this request broke lets another request through, if any."""
    wait: int | None = g.get("retry_after")
    return wait
