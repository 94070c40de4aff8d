"""Account changes that travel in the cached snapshot: sign-out everywhere, password, flags."""

from __future__ import annotations

from typing import Any

from app.preferences import writes
from app.preferences.snapshot import Snapshot


def update_account(
    user_id: int,
    *,
    active: bool | None = None,
    password_hash: str | None = None,
    sign_out: bool = False,
    is_admin: bool | None = None,
) -> Snapshot:
    """Change account columns and refresh the cached snapshot, effective on the next request.

    :param sign_out: end every session and remember cookie of the user (sign-out, new
        password); the session id carries ``auth_version``, which this bumps.
    :return: the user as written.
    """

    def columns(current: Snapshot) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if active is not None:
            values["active"] = active
        if password_hash is not None:
            values["password_hash"] = password_hash
        if is_admin is not None and is_admin != current.is_admin:
            values["is_admin"] = is_admin
        if sign_out or password_hash is not None:
            values["auth_version"] = current.auth_version + 1
        return values

    return writes.write(user_id, lambda choices: choices, account=columns).after
