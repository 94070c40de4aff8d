"""Per-user limits on writes, shared by every adapter that saves settings."""

from __future__ import annotations

import math
import time

from flask import current_app
from flask_login import current_user

from app.extensions import limiter


def _user_key() -> str:
    """Writes are counted per signed-in user, wherever they come from."""
    return f"user:{current_user.id}"


def _writes_limit() -> str:
    return str(current_app.config["RATELIMIT_WRITES"])


#: One budget for every write of a user's settings: API, settings page, imports.
settings_writes = limiter.shared_limit(_writes_limit, scope="settings-writes", key_func=_user_key)


def retry_after() -> int | None:
    """Seconds until the limit this request broke lets another request through, if any."""
    breached = [limit for limit in limiter.current_limits if limit.breached]
    if not breached:
        return None
    return max(1, math.ceil(max(limit.reset_at for limit in breached) - time.time()))
