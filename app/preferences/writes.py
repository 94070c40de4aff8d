"""The one way a user's row changes: settings, account changes and imports all write here.

A write is all or nothing and loses no other write. With the snapshot the request already
holds, it is first tried as one compare-and-set ``UPDATE`` on that snapshot's version (on
PostgreSQL one statement with its history rows, committing itself); otherwise, or when the
row moved on, the row is read under a lock. Each changed key gets its history row in the
same transaction. Before the commit the cache makes the old entry
unservable, after it the new entry is stored (``cache.begin_write``), so no reader sees the
new entry before the database has it, nor the old one once the write returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Executable, bindparam, select, update

from app import database
from app.extensions import db
from app.models import User
from app.preferences import history, snapshot, storage
from app.preferences.cache import entries as cache
from app.preferences.snapshot import Settings, Snapshot, UserNotFound
from app.times import utcnow

#: Turns the stored choices into the new ones (it may change the dict it is given).
ChoiceChange = Callable[[dict[str, Any]], dict[str, Any]]
#: Other columns to set in the same statement, from the row as it is.
AccountChange = Callable[[Snapshot], dict[str, Any]]


class VersionMismatch(Exception):
    """The caller's ``If-Match`` version is not the current one; nothing was written."""

    def __init__(self, current: Settings) -> None:
        super().__init__("settings changed since they were read")
        self.current = current


class ChangeRefused(Exception):
    """Raised by a change that will not apply to the choices it was given.

    Judged against the request's snapshot, which may trail the row, it is judged again on
    the row under the lock before it reaches the caller.
    """


@dataclass(frozen=True)
class Written:
    """What a write found and left: the user as before it, and as after it."""

    before: Snapshot
    after: Snapshot


@dataclass(frozen=True)
class _Plan:
    current: Snapshot
    choices: dict[str, Any]
    values: dict[str, Any]

    def after(self) -> Snapshot:
        values, current = self.values, self.current
        return Snapshot(
            user_id=current.user_id,
            email=values.get("email", current.email),
            active=values.get("active", current.active),
            auth_version=values.get("auth_version", current.auth_version),
            version=values["version"],
            choices=self.choices,
            updated_at=values.get("preferences_updated_at", current.updated_at),
            is_admin=values.get("is_admin", current.is_admin),
        )


def write(
    user_id: int,
    change: ChoiceChange,
    *,
    expected_version: int | None = None,
    account: AccountChange | None = None,
    known: Snapshot | None = None,
    source: str = "other",
) -> Written:
    """Apply ``change`` (and ``account``) to a user's row, all or nothing; see the module.

    :raise VersionMismatch: ``expected_version`` is given and is not the current version.
    :raise UserNotFound: no such user.
    """
    written = _in_one_statement(user_id, change, account, known, expected_version, source)
    if written is not None:
        return written
    session = db.session
    pending: cache.PendingWrite | None = None
    committing = False
    try:
        # On PostgreSQL the one statement has just tried the compare-and-set: lock.
        plan = (
            None
            if database.on_postgresql()
            else _fast(user_id, change, account, known, expected_version)
        )
        plan = plan or _locked(user_id, change, account, expected_version)
        if not plan.values:
            session.rollback()
            cache.count_unwritten(user_id)
            return Written(plan.current, plan.current)
        if "preferences_updated_at" in plan.values:
            at = plan.values["preferences_updated_at"]
            history.record(user_id, plan.current.choices, plan.choices, source, at)
        pending = cache.begin_write(user_id, plan.values["version"])
        committing = True
        session.commit()
    except BaseException:
        # Taken back while the row is still locked, so no other write's tombstone can be
        # hit; never after a commit was sent, which may have written the row after all.
        if pending is not None and not committing:
            pending.abandoned()
        session.rollback()
        raise
    after = plan.after()
    pending.committed(after.to_json())
    return Written(plan.current, after)


def _in_one_statement(
    user_id: int,
    change: ChoiceChange,
    account: AccountChange | None,
    known: Snapshot | None,
    expected_version: int | None,
    source: str,
) -> Written | None:
    """The usual write on PostgreSQL: one compare-and-set statement that commits itself.

    The row's ``UPDATE`` and its history rows are one statement (a data-modifying CTE) sent
    outside a transaction, so the write costs one round trip and one WAL flush instead of
    four round trips (``BEGIN``, ``UPDATE``, ``INSERT``, ``COMMIT``). The tombstone goes first
    (``cache.tombstone_first``), since there is no moment between the statement and its
    commit. ``None`` sends the caller the transactional way: no snapshot, SQLite, a change
    to confirm under the lock, Redis out of reach, or another write got there first.
    """
    if known is None or not database.on_postgresql():
        return None
    plan = _plan_on(known, change, account, user_id, expected_version)
    if plan is None:
        return None
    if not plan.values:
        # Nothing to write if the row is still at the snapshot's version: one read, which
        # is where this no-op takes effect, instead of a transaction that locks the row.
        if _row_version(user_id) != known.version:
            return None
        cache.count_unwritten(user_id)
        return Written(known, known)
    parameters: dict[str, Any] = {"cas_id": user_id, "cas_version": known.version}
    parameters.update({f"set_{name}": value for name, value in plan.values.items()})
    history_parameters = None
    if "preferences_updated_at" in plan.values:
        at = plan.values["preferences_updated_at"]
        history_parameters = history.parameters_after(known.choices, plan.choices, source, at)
        parameters.update(history_parameters or {})
    statement = _one_statement(tuple(sorted(plan.values)), history_parameters is not None)
    # Connected before the tombstone: with the database down, the write fails here and the
    # cached entry stays, so this user's reads go on being served from the cache.
    with database.autocommit() as connection:
        pending = cache.tombstone_first(user_id, plan.values["version"])
        if pending is None:
            return None
        result = connection.execute(statement, parameters)
        # Returned ids say whether the update matched: the driver gives the CTE no row count.
        matched = result.first() is not None
    if not matched:
        return None
    after = plan.after()
    pending.committed(after.to_json())
    return Written(known, after)


#: Built once: SQLAlchemy then runs its cached compilation as it is, where a statement
#: built per call has its result columns matched to the cached ones on every execution.
ROW_VERSION = select(User.version).where(User.id == bindparam("user_id"))


def _row_version(user_id: int) -> int | None:
    """The version the user's row is at now, read outside any transaction."""
    with database.autocommit() as connection:
        version: int | None = connection.execute(
            ROW_VERSION, {"user_id": user_id}
        ).scalar_one_or_none()
    return version


@functools.cache
def _one_statement(columns: tuple[str, ...], with_history: bool) -> Executable:
    """The compare-and-set ``UPDATE`` of ``columns``, with the history rows if asked.

    Built once per set of columns, with every value a parameter: constructing the statement
    per write cost about as much as running it.
    """
    users = db.metadata.tables[User.__tablename__]
    statement = (
        update(users)
        .where(users.c.id == bindparam("cas_id"), users.c.version == bindparam("cas_version"))
        .values({name: bindparam(f"set_{name}") for name in columns})
        .returning(users.c.id)
    )
    return history.insert_after(statement) if with_history else statement


def _plan_on(
    known: Snapshot,
    change: ChoiceChange,
    account: AccountChange | None,
    user_id: int,
    expected_version: int | None,
) -> _Plan | None:
    """The write as planned on ``known``, or ``None`` when it must be judged under the lock.

    A plan without values changes nothing, as far as ``known`` tells: it must be confirmed
    against the row, since a stale snapshot must never swallow a real change.
    """
    if known.user_id != user_id or expected_version not in (None, known.version):
        return None
    try:
        choices = change(dict(known.choices))
    except ChangeRefused:
        return None
    columns = account(known) if account else {}
    if choices == known.choices and not columns:
        return _Plan(known, choices, {})
    return _Plan(known, choices, _new_values(known, choices, columns))


def _fast(
    user_id: int,
    change: ChoiceChange,
    account: AccountChange | None,
    known: Snapshot | None,
    expected_version: int | None,
) -> _Plan | None:
    """The write as one compare-and-set on ``known``, or ``None`` to take the locked path."""
    if known is None:
        return None
    plan = _plan_on(known, change, account, user_id, expected_version)
    if plan is None or not plan.values:
        return None
    return plan if _compare_and_set(known, plan.values) else None


def _locked(
    user_id: int,
    change: ChoiceChange,
    account: AccountChange | None,
    expected_version: int | None,
) -> _Plan:
    """The write on the row read under a lock; a plan with no values changes nothing."""
    current = _lock_user(user_id)
    if expected_version is not None and expected_version != current.version:
        raise VersionMismatch(current.settings)
    choices = change(dict(current.choices))
    columns = account(current) if account else {}
    if choices == current.choices and not columns:
        return _Plan(current, choices, {})
    values = _new_values(current, choices, columns)
    db.session.execute(update(User).where(User.id == user_id).values(**values))
    return _Plan(current, choices, values)


def _lock_user(user_id: int) -> Snapshot:
    """Read the user's row inside a transaction that holds it until commit.

    PostgreSQL locks the row (``FOR UPDATE``). SQLite has no row locks, so a no-op update
    first takes the database write lock; without it two writers could both read, and the
    second to commit would overwrite the first one's key.
    """
    session = db.session
    statement = select(*snapshot.COLUMNS).where(User.id == user_id)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(User.id == user_id).values(version=User.version))
    else:
        statement = statement.with_for_update()
    row = session.execute(statement).one_or_none()
    if row is None:
        raise UserNotFound(user_id)
    return snapshot.from_row(row)


def _compare_and_set(known: Snapshot, values: dict[str, Any]) -> bool:
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
