"""The signed-in user as Flask-Login sees it: the cached snapshot, and a typed way to it.

A request with a warm cache needs no SQL for its user, and views read settings from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_login import current_user

from app.preferences.snapshot import Settings, Snapshot, get_snapshot


@dataclass(frozen=True)
class SessionUser:
    """The signed-in user: the cached snapshot, no ORM object."""

    snapshot: Snapshot
    is_authenticated: bool = field(default=True, init=False)
    is_anonymous: bool = field(default=False, init=False)

    @property
    def id(self) -> int:
        """The user's id."""
        return self.snapshot.user_id

    @property
    def email(self) -> str:
        """The user's email address."""
        return self.snapshot.email

    @property
    def is_active(self) -> bool:
        """Whether the account may sign in."""
        return self.snapshot.active

    @property
    def is_admin(self) -> bool:
        """Whether the user may open the admin pages; from the snapshot, so no SQL."""
        return self.snapshot.is_admin

    @property
    def settings(self) -> Settings:
        """The user's effective settings as of this request."""
        return self.snapshot.settings

    def get_id(self) -> str:
        """Session identity: id and auth version, so a bump signs every session out."""
        return f"{self.snapshot.user_id}:{self.snapshot.auth_version}"


def load_user(session_id: str) -> SessionUser | None:
    """Resolve the id stored in the session or remember cookie to a user, or refuse it."""
    user_id, _, auth_version = session_id.partition(":")
    if not (user_id.isdigit() and auth_version.isdigit()):
        return None
    snapshot = get_snapshot(int(user_id))
    if snapshot is None or not snapshot.active or snapshot.auth_version != int(auth_version):
        return None
    return SessionUser(snapshot)


class NotSignedIn(Exception):
    """A view that needs the signed-in user ran without one."""


def signed_in() -> SessionUser:
    """The signed-in user of this request, typed; for views behind the sign-in check.

    :raise NotSignedIn: nobody is signed in (the app's sign-in check should have stopped
        the request before the view).
    """
    user = current_user._get_current_object()
    if not isinstance(user, SessionUser):
        raise NotSignedIn
    return user
