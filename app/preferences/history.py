"""The change history: one row per changed key, written in the write's own transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    DateTime,
    Insert,
    Integer,
    String,
    bindparam,
    column,
    delete,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.sql.dml import UpdateBase

from app.extensions import db
from app.models import ChangeValue, PreferenceChange
from app.text import lazy_gettext, lazy_pgettext
from app.times import aware, utc_text, utcnow

#: Where a change may come from, as recorded in the history, and its name for people.
SOURCES: dict[str, Any] = {
    "page": lazy_gettext("Settings page"),
    "dashboard": lazy_gettext("Dashboard"),
    "api": lazy_gettext("API"),
    "reset": lazy_gettext("Reset"),
    "import": lazy_gettext("Import"),
    "admin": lazy_gettext("Administrator"),
    "cli": lazy_gettext("Command line"),
    "other": lazy_pgettext("source of a change", "Other"),
}

#: How many history entries one page holds unless the caller asks for another number.
HISTORY_PAGE = 20


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
            "at": utc_text(self.at),
        }

    def as_diff(self) -> dict[str, Any]:
        """What an import reports per key: ``key``, ``old``, ``new``."""
        return {"key": self.key, "old": self.old, "new": self.new}


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


def rows_of(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The history rows of a change from ``old`` to ``new``: ``key``, ``old``, ``new``."""
    return [{"key": c.key, "old": c.old, "new": c.new} for c in changed_keys(old, new)]


def record(
    user_id: int, old: Mapping[str, Any], new: Mapping[str, Any], source: str, at: datetime
) -> None:
    """Add a history row per changed key to the write's open transaction (``db.session``)."""
    rows = [
        {**row, "user_id": user_id, "source": source, "created_at": at} for row in rows_of(old, new)
    ]
    if rows:
        # Core, not the ORM's bulk insert: the same statement without its bookkeeping.
        db.session.execute(insert(db.metadata.tables[PreferenceChange.__tablename__]), rows)


#: The parameters of ``insert_after``'s statement.
ROWS_PARAMETER, SOURCE_PARAMETER, AT_PARAMETER = "history_rows", "history_source", "history_at"


def insert_after(update_returning_id: UpdateBase) -> Insert:
    """One statement: ``update_returning_id``, then history rows for the user it updated.

    A data-modifying CTE (PostgreSQL): the rows are inserted only if the update matched a
    row, and the ids it returns say whether it did. The statement is the same for every
    write, so it is built and compiled once; ``parameters_after`` gives each write's values.
    """
    updated = update_returning_id.cte("updated")
    # The rows travel as one JSON parameter, in key order as ``record`` inserts them.
    changed = (
        func.json_to_recordset(bindparam(ROWS_PARAMETER, type_=ChangeValue))
        .table_valued(
            column("position", Integer),
            column("key", String),
            column("old", ChangeValue),
            column("new", ChangeValue),
        )
        .render_derived(name="changed", with_types=True)
    )
    table = db.metadata.tables[PreferenceChange.__tablename__]
    chosen = (
        select(
            updated.c.id,
            changed.c.key,
            changed.c.old,
            changed.c.new,
            bindparam(SOURCE_PARAMETER, type_=String),
            bindparam(AT_PARAMETER, type_=DateTime(timezone=True)),
        )
        .select_from(updated.join(changed, true()))
        .order_by(changed.c.position)
    )
    return (
        insert(table)
        .from_select(["user_id", "key", "old", "new", "source", "created_at"], chosen)
        .returning(table.c.id)
    )


def parameters_after(
    old: Mapping[str, Any], new: Mapping[str, Any], source: str, at: datetime
) -> dict[str, Any] | None:
    """The values of ``insert_after``'s parameters; ``None`` when no key changed."""
    rows = [{"position": n, **row} for n, row in enumerate(rows_of(old, new))]
    if not rows:
        return None
    return {ROWS_PARAMETER: rows, SOURCE_PARAMETER: source, AT_PARAMETER: at}


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
            at=aware(row.created_at),
        )
        for row in rows
    ]
    # Reads must not hold a transaction past their statement.
    db.session.rollback()
    return changes


def prune(days: int) -> int:
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
