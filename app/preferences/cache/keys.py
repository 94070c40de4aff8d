"""The cache's key names: built here only."""

from __future__ import annotations

#: Alive while the cache may be trusted (``housekeeping``). Its value is an epoch, new
#: whenever the marker had lapsed. (Releases before this one kept a marker of another
#: meaning under ``user_settings:trusted``.)
TRUSTED_KEY = "user_settings:trusted:2"


def settings_key(user_id: int) -> str:
    """The cache key of one user's settings entry."""
    return f"user_settings:{user_id}"
