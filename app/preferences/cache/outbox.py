"""Pending invalidations: entries that writes could not make unservable in Redis.

A write that cannot reach Redis records its user and version in the write's own transaction
(so no crash after the commit can lose it); housekeeping applies the rows and deletes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select

from app.extensions import db
from app.models import PendingInvalidation

#: How many pending invalidations one reconcile step reads and applies at once.
BATCH = 500


def record_in_transaction(user_id: int, version: int | None) -> None:
    """Add a pending row to the write's open transaction (``db.session``)."""
    db.session.execute(insert(PendingInvalidation).values(user_id=user_id, version=version))


def record_now(user_id: int) -> None:
    """Record, in a transaction of its own, that a user's entry must be dropped."""
    with db.engine.begin() as connection:
        connection.execute(insert(PendingInvalidation).values(user_id=user_id))


#: The oldest pending rows. Built once, as every reconcile runs it: a statement built per call
#: has its result columns matched again to the cached compilation's on every execution.
OLDEST = (
    select(PendingInvalidation.id, PendingInvalidation.user_id, PendingInvalidation.version)
    .order_by(PendingInvalidation.id)
    .limit(BATCH)
)


def oldest() -> list[Any]:
    """Up to ``BATCH`` pending rows (``id``, ``user_id``, ``version``), oldest first."""
    with db.engine.connect() as connection:
        return list(connection.execute(OLDEST).all())


def remove(ids: list[int]) -> None:
    """Delete exactly these rows: one with a smaller id may still commit after they were read."""
    with db.engine.begin() as connection:
        connection.execute(delete(PendingInvalidation).where(PendingInvalidation.id.in_(ids)))


def count() -> int:
    """How many entries are waiting to be dropped, across the deployment."""
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(PendingInvalidation)) or 0)
