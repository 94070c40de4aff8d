"""Export and import: a versioned document of a user's explicit choices, and reading it back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.preferences import registry, storage, validation, writes
from app.preferences.history import Change, changed_keys
from app.preferences.service import User, target
from app.preferences.snapshot import Settings, UserNotFound, load_snapshot
from app.text import gettext
from app.times import utc_text, utcnow

#: The ``format`` and newest ``version`` of an exported settings document.
EXPORT_FORMAT = "user-settings"
EXPORT_VERSION = 1
#: Members an exported document may have; ``exported_at`` is informative only.
EXPORT_MEMBERS = frozenset({"format", "version", "exported_at", "settings"})
#: The largest exported document an import reads: ours are a few hundred bytes.
IMPORT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class ImportResult:
    """What an import changed (or, for a dry run, would change), and the settings after."""

    changes: list[Change]
    settings: Settings
    dry_run: bool


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
        "exported_at": utc_text(utcnow()),
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
    errors = _envelope_errors(document)
    if errors:
        raise validation.ValidationError(errors)
    settings = document["settings"]
    if document["version"] == 0:
        return _version_0_choices(settings)
    return validation.validate_document(settings)


def _envelope_errors(document: Mapping[str, Any]) -> validation.Errors:
    """What is wrong with the document around the settings: its members, format, version."""
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
    if not isinstance(document.get("settings"), dict):
        errors["settings"] = [gettext("Must be an object.")]
    return errors


def _version_0_choices(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The choices of a version 0 document's settings, validated.

    :raise validation.ValidationError: a member version 0 never had.
    """
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


def import_document(
    user: User,
    document: Any,
    *,
    dry_run: bool = False,
    expected_version: int | None = None,
) -> ImportResult:
    """Replace a user's choices with those of an exported document, all or nothing.

    Keys the document does not hold go back to their default: after an import the user's
    choices are exactly the document's. A dry run reports the same changes, writes nothing.

    :param expected_version: the version a preview was made against; the import is refused
        if anything changed since, as the preview would no longer say what it does.
    :raise validation.ValidationError: the document is not one this app can read; nothing
        was changed.
    :raise writes.VersionMismatch: the settings changed since ``expected_version``.
    :raise UserNotFound: no such user.
    """
    choices = read_export(document)
    user_id, known = target(user)
    if dry_run:
        current = load_snapshot(user_id)
        if current is None:
            raise UserNotFound(user_id)
        after = replace(current, choices=choices)
        return ImportResult(changed_keys(current.choices, choices), after.settings, True)
    written = writes.write(
        user_id,
        lambda _stored: dict(choices),
        expected_version=expected_version,
        known=known,
        source="import",
    )
    changes = changed_keys(written.before.choices, written.after.choices)
    return ImportResult(changes, written.after.settings, False)
