"""Reading and writing a user's settings: validation, the transaction, the ETag version.

Called by the pages, the API and the CLI alike; it never touches ``request`` or ``session``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from app.extensions import db
from app.models import User, utcnow
from app.preferences import cache, registry


class UserNotFound(Exception):
    """No such user."""


class VersionMismatch(Exception):
    """The caller's ``If-Match`` version is not the current one; nothing was written."""

    def __init__(self, current: Settings) -> None:
        super().__init__("settings changed since they were read")
        self.current = current


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

    def to_json(self) -> str:
        """Serialise for the cache."""
        return json.dumps(
            {
                "id": self.user_id,
                "email": self.email,
                "active": self.active,
                "auth": self.auth_version,
                "version": self.version,
                "choices": self.choices,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, payload: str) -> Snapshot:
        """Deserialise a cached entry."""
        data = json.loads(payload)
        updated_at = data["updated_at"]
        return cls(
            user_id=data["id"],
            email=data["email"],
            active=data["active"],
            auth_version=data["auth"],
            version=data["version"],
            choices=data["choices"],
            updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
        )

    @property
    def settings(self) -> Settings:
        """The effective settings this snapshot describes."""
        return Settings(
            user_id=self.user_id,
            values=registry.effective(self.choices),
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
        body["updated_at"] = (
            self.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
            if self.updated_at
            else None
        )
        return body


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


_COLUMNS = (
    User.id,
    User.email,
    User.active,
    User.auth_version,
    User.version,
    User.preferences,
    User.preferences_updated_at,
)


def _snapshot_from_row(row: Any) -> Snapshot:
    return Snapshot(
        user_id=row.id,
        email=row.email,
        active=row.active,
        auth_version=row.auth_version,
        version=row.version,
        choices=registry.upgrade(row.preferences),
        updated_at=_aware(row.preferences_updated_at),
    )


def load_snapshot(user_id: int) -> Snapshot | None:
    """Read a user's snapshot straight from the database."""
    row = db.session.execute(select(*_COLUMNS).where(User.id == user_id)).one_or_none()
    # Reads must not hold a transaction (and on SQLite a lock) past this statement.
    db.session.rollback()
    return _snapshot_from_row(row) if row else None


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


def _lock_user(user_id: int) -> Snapshot:
    """Read the user's row inside a transaction that holds it until commit.

    PostgreSQL locks the row (``FOR UPDATE``). SQLite has no row locks, so a no-op update
    first takes the database write lock; without it two writers could both read, and the
    second to commit would overwrite the first one's key.
    """
    session = db.session
    statement = select(*_COLUMNS).where(User.id == user_id)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(User.id == user_id).values(version=User.version))
    else:
        statement = statement.with_for_update()
    row = session.execute(statement).one_or_none()
    if row is None:
        raise UserNotFound(user_id)
    return _snapshot_from_row(row)


def _write(
    user_id: int,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    expected_version: int | None,
    account: Callable[[Snapshot], dict[str, Any]] | None = None,
) -> Snapshot:
    """Apply ``change`` to a user's stored choices under a lock; all or nothing.

    The cache is refreshed after the commit, so no reader can see the new entry before the
    database has it. ``account`` returns other columns to write in the same statement.

    :raise VersionMismatch: ``expected_version`` is given and is not the current version.
    """
    session = db.session
    try:
        current = _lock_user(user_id)
        if expected_version is not None and expected_version != current.version:
            raise VersionMismatch(current.settings)
        choices = change(dict(current.choices))
        columns = account(current) if account else {}
        if choices == current.choices and not columns:
            session.rollback()
            return current
        now = utcnow()
        values: dict[str, Any] = {"version": current.version + 1, **columns}
        if choices != current.choices:
            values["preferences"] = registry.stored_document(choices)
            values["preferences_updated_at"] = now
        session.execute(update(User).where(User.id == user_id).values(**values))
        recorded = cache.record_pending_in(user_id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    written = Snapshot(
        user_id=current.user_id,
        email=values.get("email", current.email),
        active=values.get("active", current.active),
        auth_version=values.get("auth_version", current.auth_version),
        version=values["version"],
        choices=choices,
        updated_at=values.get("preferences_updated_at", current.updated_at),
    )
    cache.store(user_id, written.version, written.to_json(), recorded=recorded)
    return written


def update_settings(
    user_id: int, changes: Mapping[str, Any], *, expected_version: int | None = None
) -> Settings:
    """Save dotted ``changes``; a ``None`` value resets that key. Other keys keep their value.

    Everything is validated before anything is written, so a bad value saves nothing.

    :raise registry.ValidationError: with a message per dotted key.
    :raise VersionMismatch: the settings changed since ``expected_version``.
    """
    cleaned = registry.validate(changes, allow_null=True)

    def merge(choices: dict[str, Any]) -> dict[str, Any]:
        for key, value in cleaned.items():
            if value is None:
                choices.pop(key, None)
            else:
                choices[key] = value
        return choices

    return _write(user_id, merge, expected_version).settings


def update_from_document(
    user_id: int,
    document: Any,
    *,
    merge_patch: bool = False,
    expected_version: int | None = None,
) -> Settings:
    """Save a settings object as the API receives it (groups nested).

    :param merge_patch: JSON Merge Patch meaning, where ``null`` resets a key or a group.
    """
    cleaned = registry.validate_document(document, allow_null=merge_patch)
    return update_settings(user_id, cleaned, expected_version=expected_version)


def reset_settings(
    user_id: int, keys: Iterable[Any] | None = None, *, expected_version: int | None = None
) -> Settings:
    """Put every key, or only ``keys`` (dotted, or group names), back to its default.

    :raise registry.ValidationError: a key that does not exist.
    """
    names = registry.validate_keys(keys) if keys is not None else list(registry.BY_KEY)
    return update_settings(user_id, dict.fromkeys(names), expected_version=expected_version)


def update_account(
    user_id: int,
    *,
    active: bool | None = None,
    password_hash: str | None = None,
    sign_out: bool = False,
) -> None:
    """Change account columns and refresh the cached snapshot, effective on the next request.

    :param sign_out: end every session and remember cookie of the user (sign-out, new
        password); the session id carries ``auth_version``, which this bumps.
    """

    def columns(current: Snapshot) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if active is not None:
            values["active"] = active
        if password_hash is not None:
            values["password_hash"] = password_hash
        if sign_out or password_hash is not None:
            values["auth_version"] = current.auth_version + 1
        return values

    _write(user_id, lambda choices: choices, None, columns)
