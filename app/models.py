"""Database models and the Flask-Login user loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, func, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base

if TYPE_CHECKING:
    from app.preferences.service import Settings, Snapshot

PreferencesJSON = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class User(Base):
    """A person who signs in; ``preferences`` holds only the choices they made."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased by ``auth.service.normalize_email``, so uniqueness ignores case.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    preferences: Mapped[dict[str, Any]] = mapped_column(
        PreferencesJSON, default=dict, server_default="{}"
    )
    # Bumped by every write to the row: the settings ETag and the cache's ordering guard.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Bumped on sign-out and password change; part of the session id, so old cookies die.
    auth_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    preferences_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), onupdate=utcnow
    )


class PendingInvalidation(Base):
    """A cache entry that a write could not refresh because the cache was unreachable."""

    __tablename__ = "pending_cache_invalidations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


@dataclass(frozen=True)
class SessionUser:
    """The signed-in user as Flask-Login sees it: the cached snapshot, no ORM object.

    So a request with a warm cache needs no SQL, and views read settings from here.
    """

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
    def settings(self) -> Settings:
        """The user's effective settings as of this request."""
        return self.snapshot.settings

    def get_id(self) -> str:
        """Session identity: id and auth version, so a bump signs every session out."""
        return f"{self.snapshot.user_id}:{self.snapshot.auth_version}"


def load_user(session_id: str) -> SessionUser | None:
    """Resolve the id stored in the session or remember cookie to a user, or refuse it."""
    from app.preferences import service

    user_id, _, auth_version = session_id.partition(":")
    if not (user_id.isdigit() and auth_version.isdigit()):
        return None
    snapshot = service.get_snapshot(int(user_id))
    if snapshot is None or not snapshot.active or snapshot.auth_version != int(auth_version):
        return None
    return SessionUser(snapshot)
