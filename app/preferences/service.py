"""Reading and writing a user's settings: validation, the transaction, the ETag version.

Called by the pages, the API and the CLI alike; it never touches ``request`` or ``session``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import CursorResult, delete, insert, select, update

from app.extensions import db
from app.models import PreferenceChange, User, utcnow
from app.preferences import cache, registry, storage, validation
from app.text import gettext

#: Where a change may come from, as recorded in the history.
SOURCES = ("page", "dashboard", "api", "reset", "import", "admin", "cli", "other")

#: The ``format`` and newest ``version`` of an exported settings document.
EXPORT_FORMAT = "user-settings"
EXPORT_VERSION = 1
#: Members an exported document may have; ``exported_at`` is informative only.
EXPORT_MEMBERS = frozenset({"format", "version", "exported_at", "settings"})

#: How many history entries one page holds unless the caller asks for another number.
HISTORY_PAGE = 20


class UserNotFound(Exception):
    """No such user."""


class VersionMismatch(Exception):
    """The caller's ``If-Match`` version is not the current one; nothing was written."""

    def __init__(self, current: Settings) -> None:
        super().__init__("settings changed since they were read")
        self.current = current


class ConflictingChange(Exception):
    """Keys the caller changed were also changed elsewhere since it read them; nothing saved.

    ``keys`` are the dotted keys in conflict, ``current`` every effective value as stored.
    """

    def __init__(self, keys: list[str], current: dict[str, Any]) -> None:
        super().__init__(f"changed elsewhere: {', '.join(keys)}")
        self.keys = keys
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
    is_admin: bool = False

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
                "admin": self.is_admin,
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
            # Entries written before the flag existed describe non-admins.
            is_admin=bool(data.get("admin", False)),
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
        body["updated_at"] = _utc_text(self.updated_at)
        return body


def _utc_text(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the API writes every time."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Change:
    """One entry of a user's history: a dotted key's stored value before and after.

    ``None`` on either side means "not stored": the default applied, or applies again.
    """

    id: int
    key: str
    old: Any
    new: Any
    source: str
    at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The API representation: ``key``, ``old``, ``new``, ``source``, ``at`` (UTC)."""
        return {
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "source": self.source,
            "at": _utc_text(self.at),
        }

    def as_diff(self) -> dict[str, Any]:
        """What an import reports per key: ``key``, ``old``, ``new``."""
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ImportResult:
    """What an import changed (or, for a dry run, would change), and the settings after."""

    changes: list[Change]
    settings: Settings
    dry_run: bool


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
    User.is_admin,
)


def _snapshot_from_row(row: Any) -> Snapshot:
    return Snapshot(
        user_id=row.id,
        email=row.email,
        active=row.active,
        auth_version=row.auth_version,
        version=row.version,
        choices=storage.upgrade(row.preferences),
        updated_at=_aware(row.preferences_updated_at),
        is_admin=row.is_admin,
    )


def load_snapshot(user_id: int) -> Snapshot | None:
    """Read a user's snapshot straight from the database."""
    try:
        row = db.session.execute(select(*_COLUMNS).where(User.id == user_id)).one_or_none()
    finally:
        # Reads must not hold a transaction (and on SQLite a lock) past this statement, and
        # a failed one must not leave the session unusable for the error page.
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


def _compare_and_set(known: Snapshot, choices: dict[str, Any], values: dict[str, Any]) -> bool:
    """Write ``values`` if the row is still at ``known.version``: one statement, no lock.

    The cached snapshot a request already holds is usually current, so most writes need a
    single ``UPDATE`` instead of a locked read and an update. When another write got there
    first, nothing changes and the caller falls back to the locked path.
    """
    session = db.session
    # A Core statement on the table: the ORM's bulk-update bookkeeping (synchronising the
    # identity map) cost more than the statement itself, and no ORM object is loaded here.
    users = db.metadata.tables[User.__tablename__]
    result = session.execute(
        update(users)
        .where(users.c.id == known.user_id, users.c.version == known.version)
        .values(**values)
    )
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        session.rollback()
        return False
    return True


def _new_values(
    current: Snapshot, choices: dict[str, Any], columns: dict[str, Any]
) -> dict[str, Any]:
    """The columns a write sets: the next version, the choices if they changed, ``columns``."""
    values: dict[str, Any] = {"version": current.version + 1, **columns}
    if choices != current.choices:
        values["preferences"] = storage.stored_document(choices)
        values["preferences_updated_at"] = utcnow()
    return values


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Each dotted key whose stored choice differs between ``old`` and ``new``, in key order.

    ``None`` stands for "not stored" (the default applies) on either side. The ``Change``
    objects carry no id, source or time: they describe a write that may not happen yet.
    """
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        # ``True == 1`` in Python; a stored value of another type is a real change.
        if before != after or type(before) is not type(after):
            changes.append(Change(id=0, key=key, old=before, new=after, source="", at=None))
    return changes


def _record_changes(
    user_id: int, old: Mapping[str, Any], new: Mapping[str, Any], source: str, at: datetime
) -> None:
    """Add a history row per changed key to the write's open transaction."""
    rows = [
        {
            "user_id": user_id,
            "key": c.key,
            "old": c.old,
            "new": c.new,
            "source": source,
            "created_at": at,
        }
        for c in changed_keys(old, new)
    ]
    if rows:
        # Core, not the ORM's bulk insert: the same statement without its bookkeeping.
        db.session.execute(insert(db.metadata.tables[PreferenceChange.__tablename__]), rows)


def _write(
    user_id: int,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    expected_version: int | None,
    account: Callable[[Snapshot], dict[str, Any]] | None = None,
    known: Snapshot | None = None,
    source: str = "other",
) -> Snapshot:
    """Apply ``change`` to a user's stored choices, all or nothing, losing no other write.

    With ``known`` (the snapshot the request holds) the write is first tried as a
    compare-and-set on its version; otherwise, or if the row moved on, the row is read under
    a lock. Before the commit the cache makes the old entry unservable, after it the new
    entry is stored (``cache.begin_write``), so no reader sees the new entry before the
    database has it, nor the old one once this returns. ``account`` returns other columns
    to write in the same statement. Each changed key is added to the history, tagged with
    ``source``, in the same transaction: no change without its history row, no row without
    its change.

    :raise VersionMismatch: ``expected_version`` is given and is not the current version.
    """
    session = db.session
    pending: cache.PendingWrite | None = None
    committing = False
    try:
        values: dict[str, Any] | None = None
        current: Snapshot | None = known
        if (
            known is not None
            and known.user_id == user_id
            and expected_version in (None, known.version)
        ):
            try:
                choices = change(dict(known.choices))
            except ConflictingChange:
                # Judged against a snapshot that may trail the row: decided under the lock.
                choices = dict(known.choices)
                current = None
            columns = account(known) if account else {}
            # A write that looks like a no-op against the cache is confirmed under the lock:
            # a stale cache must never swallow a real change.
            if current is not None and (choices != known.choices or columns):
                values = _new_values(known, choices, columns)
                if not _compare_and_set(known, choices, values):
                    values = None
        if values is None or current is None:
            current = _lock_user(user_id)
            if expected_version is not None and expected_version != current.version:
                raise VersionMismatch(current.settings)
            choices = change(dict(current.choices))
            columns = account(current) if account else {}
            if choices == current.choices and not columns:
                session.rollback()
                return current
            values = _new_values(current, choices, columns)
            session.execute(update(User).where(User.id == user_id).values(**values))
        # Either path knows exactly what the row held before: ``current`` is the snapshot
        # the compare-and-set matched, or the row as read under the lock.
        if "preferences_updated_at" in values:
            _record_changes(
                user_id, current.choices, choices, source, values["preferences_updated_at"]
            )
        pending = cache.begin_write(user_id, values["version"])
        committing = True
        session.commit()
    except BaseException:
        # Taken back while the row is still locked, so no other write's tombstone can be
        # hit; never after a commit was sent, which may have written the row after all.
        if pending is not None and not committing:
            pending.abandoned()
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
        is_admin=values.get("is_admin", current.is_admin),
    )
    pending.committed(written.to_json())
    return written


def update_settings(
    user_id: int,
    changes: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    known: Snapshot | None = None,
    source: str = "other",
    seen: Mapping[str, Any] | None = None,
) -> Settings:
    """Save dotted ``changes``; a ``None`` value resets that key. Other keys keep their value.

    Everything is validated before anything is written, so a bad value saves nothing.

    :param known: the snapshot the caller already holds (the signed-in user's), which lets
        most writes skip the locked read; never trusted beyond its version.
    :param source: where the change comes from, recorded in the history (``SOURCES``).
    :param seen: the effective value of each changed key as the caller last saw it; a key
        whose stored value has moved on since (to something else than the change) is a
        conflict, checked under the same lock as the write.
    :raise validation.ValidationError: with a message per dotted key.
    :raise VersionMismatch: the settings changed since ``expected_version``.
    :raise ConflictingChange: ``seen`` is out of date for a changed key.
    """
    cleaned = validation.validate(changes, allow_null=True)

    def merge(choices: dict[str, Any]) -> dict[str, Any]:
        if seen is not None:
            _check_seen(choices, cleaned, seen)
        for key, value in cleaned.items():
            if value is None:
                choices.pop(key, None)
            else:
                choices[key] = value
        return choices

    return _write(user_id, merge, expected_version, known=known, source=source).settings


def _check_seen(
    choices: Mapping[str, Any], changes: Mapping[str, Any], seen: Mapping[str, Any]
) -> None:
    """Raise ``ConflictingChange`` for changed keys whose value moved on since ``seen``.

    :raise ConflictingChange: with every such key.
    """
    now = storage.effective(choices)
    defaults = registry.defaults()
    conflicts = []
    for key, value in changes.items():
        wanted = defaults[key] if value is None else value
        if key in seen and not _same(now[key], seen[key]) and not _same(now[key], wanted):
            conflicts.append(key)
    if conflicts:
        raise ConflictingChange(conflicts, now)


def _same(one: Any, other: Any) -> bool:
    """Equal and of one type: ``True == 1`` in Python, but not as a stored setting."""
    return bool(one == other and type(one) is type(other))


def update_from_document(
    user_id: int,
    document: Any,
    *,
    merge_patch: bool = False,
    expected_version: int | None = None,
    known: Snapshot | None = None,
    source: str = "other",
) -> Settings:
    """Save a settings object as the API receives it (groups nested).

    :param merge_patch: JSON Merge Patch meaning, where ``null`` resets a key or a group.
    """
    cleaned = validation.validate_document(document, allow_null=merge_patch)
    return update_settings(
        user_id, cleaned, expected_version=expected_version, known=known, source=source
    )


def reset_settings(
    user_id: int,
    keys: Iterable[Any] | None = None,
    *,
    expected_version: int | None = None,
    known: Snapshot | None = None,
    source: str = "reset",
) -> Settings:
    """Put every key, or only ``keys`` (dotted, or group names), back to its default.

    :raise validation.ValidationError: a key that does not exist.
    """
    names = validation.validate_keys(keys) if keys is not None else list(registry.BY_KEY)
    return update_settings(
        user_id,
        dict.fromkeys(names),
        expected_version=expected_version,
        known=known,
        source=source,
    )


def update_account(
    user_id: int,
    *,
    active: bool | None = None,
    password_hash: str | None = None,
    sign_out: bool = False,
    is_admin: bool | None = None,
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
        if is_admin is not None and is_admin != current.is_admin:
            values["is_admin"] = is_admin
        if sign_out or password_hash is not None:
            values["auth_version"] = current.auth_version + 1
        return values

    _write(user_id, lambda choices: choices, None, columns)


def history(
    user_id: int, *, before_id: int | None = None, limit: int = HISTORY_PAGE
) -> list[Change]:
    """A user's changes, newest first: at most ``limit``, older than ``before_id`` if given."""
    statement = (
        select(PreferenceChange)
        .where(PreferenceChange.user_id == user_id)
        .order_by(PreferenceChange.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        statement = statement.where(PreferenceChange.id < before_id)
    rows = db.session.scalars(statement).all()
    changes = [
        Change(
            id=row.id,
            key=row.key,
            old=row.old,
            new=row.new,
            source=row.source,
            at=_aware(row.created_at),
        )
        for row in rows
    ]
    # Reads must not hold a transaction past their statement.
    db.session.rollback()
    return changes


def prune_history(days: int) -> int:
    """Delete history entries older than ``days`` days, of every user; how many went."""
    cutoff = utcnow() - timedelta(days=days)
    try:
        result = db.session.execute(
            delete(PreferenceChange).where(PreferenceChange.created_at < cutoff)
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def exportable(choices: Mapping[str, Any]) -> dict[str, Any]:
    """The choices worth exporting: those the registry still accepts, so they import back."""
    return {
        key: value
        for key, value in choices.items()
        if key in registry.BY_KEY and registry.BY_KEY[key].accepts(value)
    }


def export_document(user_id: int) -> dict[str, Any]:
    """A versioned document of the user's explicit choices (groups nested), for download.

    :raise UserNotFound: no such user.
    """
    snapshot = load_snapshot(user_id)
    if snapshot is None:
        raise UserNotFound(user_id)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": _utc_text(utcnow()),
        "settings": registry.nest(dict(sorted(exportable(snapshot.choices).items()))),
    }


def read_export(document: Any) -> dict[str, Any]:
    """The choices an exported document holds, flat and dotted, upgraded and validated.

    Version 0 documents hold settings as the first release stored them (groups nested,
    ``notifications`` possibly a bare boolean); ``storage.upgrade`` reads them as it reads
    old rows. Version 1 documents hold settings as the API speaks them.

    :raise validation.ValidationError: messages keyed by ``format``, ``version``, another
        unknown member, or the dotted setting key, like a ``PUT``.
    """
    if not isinstance(document, dict):
        raise validation.ValidationError(
            {"": [gettext("The file must hold a JSON object: an exported settings document.")]}
        )
    errors: validation.Errors = {}
    for name in document:
        if name not in EXPORT_MEMBERS:
            errors[validation.printable(str(name))] = [gettext("Unknown member.")]
    if document.get("format") != EXPORT_FORMAT:
        errors["format"] = [
            gettext(
                'This is not an exported settings document: "format" must be "%(format)s".',
                format=EXPORT_FORMAT,
            )
        ]
    version: Any = document.get("version")
    # ``True`` is an ``int`` in Python, but not a version.
    if type(version) is not int or not 0 <= version <= EXPORT_VERSION:
        errors["version"] = [
            gettext(
                "Unknown version %(version)s: this app reads versions 0 to %(newest)d.",
                version=json.dumps(version, default=str)[:20],
                newest=EXPORT_VERSION,
            )
        ]
    exported_at = document.get("exported_at")
    if exported_at is not None and not isinstance(exported_at, str):
        errors["exported_at"] = [gettext("Must be a string or null.")]
    settings: Any = document.get("settings")
    if not isinstance(settings, dict):
        errors["settings"] = [gettext("Must be an object.")]
    if errors:
        raise validation.ValidationError(errors)
    if version == 0:
        # Version 0 nested groups too; a dotted or version member was never part of it.
        problems: validation.Errors = {
            validation.printable(name): [gettext("Unknown setting.")]
            for name in settings
            if "." in name or name == storage.VERSION_FIELD
        }
        # Only groups nest; upgrade would flatten any other object into nothing at all.
        problems.update(
            {
                validation.printable(name): [
                    gettext("Must be a single value, not an object or a list.")
                ]
                for name, value in settings.items()
                if isinstance(value, dict) and name not in registry.GROUPS
            }
        )
        if problems:
            raise validation.ValidationError(problems)
        # Version 0 carried no version field of its own: upgrade reads it as the oldest.
        return validation.validate(storage.upgrade(settings))
    return validation.validate_document(settings)


def import_document(
    user_id: int,
    document: Any,
    *,
    dry_run: bool = False,
    known: Snapshot | None = None,
    expected_version: int | None = None,
) -> ImportResult:
    """Replace a user's choices with those of an exported document, all or nothing.

    Keys the document does not hold go back to their default: after an import the user's
    choices are exactly the document's. A dry run reports the same changes, writes nothing.

    :param expected_version: the version a preview was made against; the import is refused
        if anything changed since, as the preview would no longer say what it does.
    :raise validation.ValidationError: the document is not one this app can read; nothing
        was changed.
    :raise VersionMismatch: the settings changed since ``expected_version``.
    :raise UserNotFound: no such user.
    """
    choices = read_export(document)
    if dry_run:
        current = load_snapshot(user_id)
        if current is None:
            raise UserNotFound(user_id)
        after = replace(current, choices=choices)
        return ImportResult(changed_keys(current.choices, choices), after.settings, True)
    seen: list[dict[str, Any]] = []

    def swap(stored: dict[str, Any]) -> dict[str, Any]:
        # Called again under the lock when the compare-and-set lost: keep the last view.
        seen.append(dict(stored))
        return dict(choices)

    written = _write(user_id, swap, expected_version, known=known, source="import")
    return ImportResult(changed_keys(seen[-1], written.choices), written.settings, False)
