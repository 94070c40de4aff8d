"""The tables, as typed SQLAlchemy models; nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    false,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.times import utcnow

PreferencesJSON = JSON().with_variant(JSONB(), "postgresql")

#: The largest id an ``INTEGER`` column holds; a larger one from a URL matches no row.
MAX_ID = 2**31 - 1


class User(Base):
    """A person who signs in; ``preferences`` holds only the choices they made."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased by ``auth.service.normalize_email``, so uniqueness ignores case.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # May open the read-only admin pages; set by ``flask user promote`` or ``create --admin``.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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
    #: The row version the write committed; older entries must not be served or put back.
    #: ``None`` (rows recorded before the column existed, or a plain drop) drops the entry.
    version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


#: A history value: SQL NULL, not JSON ``null``, stands for "unset" (the default applies).
ChangeValue = JSON(none_as_null=True)


class PreferenceChange(Base):
    """One changed dotted key of one user: the stored value before and after, and its path.

    ``old`` is NULL when the key was unset (the default applied), ``new`` when it was reset.
    """

    __tablename__ = "preference_changes"
    # "The latest changes of one user" walks this index backwards from the newest id.
    __table_args__ = (Index("ix_preference_changes_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    old: Mapped[Any | None] = mapped_column(ChangeValue)
    new: Mapped[Any | None] = mapped_column(ChangeValue)
    #: Where the change came from: ``page``, ``api``, ``reset``, ``import``, ``cli``...
    source: Mapped[str] = mapped_column(String(16))
    # Pruning by age scans this index, not the whole table.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), index=True
    )


class AdminView(Base):
    """An administrator opened one user's page: the audit log admins see."""

    __tablename__ = "admin_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The record outlives the admin's account, which is why it is kept without an id.
    admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    admin_email: Mapped[str] = mapped_column(String(254))
    viewed_user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
