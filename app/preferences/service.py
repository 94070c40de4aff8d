"""Reading and changing a user's settings: what the pages, the API and the CLI call.

Every function takes the user as an id or, from a request, as the snapshot it already holds
(which lets most writes skip a locked read; it is never trusted beyond its version). None
touches ``request`` or ``session``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.preferences import registry, storage, validation, writes
from app.preferences.snapshot import Settings, Snapshot

#: Who a write is for: a user's id, or the snapshot of the signed-in user.
User = int | Snapshot


class ConflictingChange(writes.ChangeRefused):
    """Keys the caller changed were also changed elsewhere since it read them; nothing saved.

    ``keys`` are the dotted keys in conflict, ``current`` every effective value as stored.
    """

    def __init__(self, keys: list[str], current: dict[str, Any]) -> None:
        super().__init__(f"changed elsewhere: {', '.join(keys)}")
        self.keys = keys
        self.current = current


def target(user: User) -> tuple[int, Snapshot | None]:
    """The user id of ``user``, and the snapshot when one was given."""
    return (user.user_id, user) if isinstance(user, Snapshot) else (user, None)


def update_settings(
    user: User,
    changes: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    source: str = "other",
    seen: Mapping[str, Any] | None = None,
    resets: bool = True,
) -> Settings:
    """Save dotted ``changes``; a ``None`` value resets that key. Other keys keep their value.

    Everything is validated before anything is written, so a bad value saves nothing.

    :param source: where the change comes from, recorded in the history (``SOURCES``).
    :param resets: whether ``None`` means "back to the default"; a form, which has no way to
        say that, sends ``None`` only for a field it left out, which is an error.
    :param seen: the effective value of each changed key as the caller last saw it; a key
        whose stored value has moved on since (to something else than the change) is a
        conflict, checked under the same lock as the write.
    :raise validation.ValidationError: with a message per dotted key.
    :raise writes.VersionMismatch: the settings changed since ``expected_version``.
    :raise ConflictingChange: ``seen`` is out of date for a changed key.
    """
    cleaned = validation.validate(changes, allow_null=resets)
    return _save(user, cleaned, expected_version, source, seen)


def _save(
    user: User,
    cleaned: Mapping[str, Any],
    expected_version: int | None,
    source: str,
    seen: Mapping[str, Any] | None = None,
) -> Settings:
    """Write validated ``cleaned`` changes (``None`` resets) through the one write path."""

    def merge(choices: dict[str, Any]) -> dict[str, Any]:
        if seen is not None:
            _check_seen(choices, cleaned, seen)
        for key, value in cleaned.items():
            if value is None:
                choices.pop(key, None)
            else:
                choices[key] = value
        return choices

    user_id, known = target(user)
    written = writes.write(
        user_id, merge, expected_version=expected_version, known=known, source=source
    )
    return written.after.settings


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
    user: User,
    document: Any,
    *,
    merge_patch: bool = False,
    expected_version: int | None = None,
    source: str = "other",
) -> Settings:
    """Save a settings object as the API receives it (groups nested).

    :param merge_patch: JSON Merge Patch meaning, where ``null`` resets a key or a group.
    """
    cleaned = validation.validate_document(document, allow_null=merge_patch)
    return _save(user, cleaned, expected_version, source)


def reset_settings(
    user: User,
    keys: Iterable[Any] | None = None,
    *,
    expected_version: int | None = None,
    source: str = "reset",
) -> Settings:
    """Put every key, or only ``keys`` (dotted, or group names), back to its default.

    :raise validation.ValidationError: a key that does not exist.
    """
    names = validation.validate_keys(keys) if keys is not None else list(registry.BY_KEY)
    return _save(user, dict.fromkeys(names), expected_version, source)
