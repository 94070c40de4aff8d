"""What a request knows of a user, read from the cache when it is warm: the snapshot.

A ``Snapshot`` is small enough to cache (no ORM object) and holds the stored choices; its
``Settings`` are the effective values, defaults merged, computed once per snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, select

from app import database
from app.extensions import db
from app.models import User
from app.preferences import registry, storage
from app.preferences.cache import entries as cache
from app.times import aware, utc_text

#: Cached times are whole microseconds since this moment: exact, unlike a float timestamp.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class UserNotFound(Exception):
    """No such user."""


@dataclass(frozen=True)
class Snapshot:
    """What a request needs to know about a user, small enough to cache: no ORM object."""

    user_id: int
    email: str
    active: bool
    auth_version: int
    version: int
    choices: dict[str, Any]
    updated_at: datetime | None
    is_admin: bool = False

    def to_json(self) -> str:
        """Serialise for the cache: a positional array, about half the bytes of an object.

        Redis keeps one per active user, so its size is most of the cache's memory.
        """
        return json.dumps(
            [
                self.user_id,
                self.email,
                int(self.active),
                self.auth_version,
                self.version,
                self.choices,
                None if self.updated_at is None else (self.updated_at - EPOCH) // MICROSECOND,
                int(self.is_admin),
            ],
            separators=(",", ":"),
            allow_nan=False,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, payload: str) -> Snapshot:
        """Deserialise a cached entry.

        :raise ValueError, KeyError, TypeError: not an entry of this release's shape.
        """
        user_id, email, active, auth, version, choices, updated, admin = json.loads(payload)
        if not isinstance(choices, dict):
            raise TypeError("the choices of a cached entry are not an object")
        return cls(
            user_id=int(user_id),
            email=str(email),
            active=bool(active),
            auth_version=int(auth),
            version=int(version),
            choices=choices,
            updated_at=None if updated is None else EPOCH + int(updated) * MICROSECOND,
            is_admin=bool(admin),
        )

    @cached_property
    def settings(self) -> Settings:
        """The effective settings this snapshot describes, merged once per snapshot.

        A page asks for them several times (language, time zone, theme, the view itself).
        """
        return Settings(
            user_id=self.user_id,
            values=storage.effective(self.choices),
            choices=self.choices,
            version=self.version,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True)
class Settings:
    """Effective settings of one user: defaults merged with their choices."""

    user_id: int
    values: dict[str, Any]
    choices: dict[str, Any]
    version: int
    updated_at: datetime | None

    @property
    def etag(self) -> str:
        """Strong ETag: changes with every write and with any change to the registry."""
        return f'"{self.user_id}.{self.version}.{registry.fingerprint()}"'

    def as_json(self) -> dict[str, Any]:
        """The API representation: groups nested, plus ``updated_at`` in UTC."""
        body = registry.nest(self.values)
        body["updated_at"] = utc_text(self.updated_at)
        return body


#: The columns a snapshot is made of.
COLUMNS = (
    User.id,
    User.email,
    User.active,
    User.auth_version,
    User.version,
    User.preferences,
    User.preferences_updated_at,
    User.is_admin,
)


def from_row(row: Any) -> Snapshot:
    """The snapshot of a row of ``COLUMNS``."""
    return Snapshot(
        user_id=row.id,
        email=row.email,
        active=row.active,
        auth_version=row.auth_version,
        version=row.version,
        choices=storage.upgrade(row.preferences),
        updated_at=aware(row.preferences_updated_at),
        is_admin=row.is_admin,
    )


#: One user's row by id. Built once: SQLAlchemy runs its cached compilation of this very
#: statement as it is, where a statement built per read had its result columns matched to
#: the cached ones again on every execution (a third of a cold read's Python).
SNAPSHOT_BY_ID = select(*COLUMNS).where(User.id == bindparam("user_id"))


def load_snapshot(user_id: int) -> Snapshot | None:
    """Read a user's snapshot straight from the database."""
    parameters = {"user_id": user_id}
    if database.on_postgresql():
        # Apart from any transaction of the session's, and in one round trip. (SQLite's
        # second connection would wait on a write lock the session may hold.)
        with database.autocommit() as connection:
            row = connection.execute(SNAPSHOT_BY_ID, parameters).one_or_none()
        return from_row(row) if row else None
    try:
        row = db.session.execute(SNAPSHOT_BY_ID, parameters).one_or_none()
    finally:
        # Reads must not hold a transaction (and on SQLite a lock) past this statement, and
        # a failed one must not leave the session unusable for the error page.
        db.session.rollback()
    return from_row(row) if row else None


def _load_for_cache(user_id: int) -> tuple[int, str] | None:
    snapshot = load_snapshot(user_id)
    return (snapshot.version, snapshot.to_json()) if snapshot else None


def get_snapshot(user_id: int) -> Snapshot | None:
    """A user's snapshot, from the cache when it is warm."""
    payload = cache.read_through(user_id, _load_for_cache)
    if payload is None:
        return None
    try:
        return Snapshot.from_json(payload)
    except (ValueError, KeyError, TypeError):
        # An entry this release cannot read (another release wrote it): drop it, ask the table.
        cache.invalidate(user_id)
        return load_snapshot(user_id)


def get_settings(user_id: int) -> Settings:
    """Effective settings of ``user_id``.

    :raise UserNotFound: no such user.
    """
    snapshot = get_snapshot(user_id)
    if snapshot is None:
        raise UserNotFound(user_id)
    return snapshot.settings
