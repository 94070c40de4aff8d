"""Queries behind the admin pages, and the audit log of who viewed whose page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import AdminView, User
from app.times import aware, utcnow

T = TypeVar("T")

#: Rows per page of the user list and the audit log.
PAGE_SIZE = 25


@dataclass(frozen=True)
class UserRow:
    """One user in the admin list."""

    id: int
    email: str
    active: bool
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True)
class ViewRow:
    """One entry of the audit log: which admin opened which user's page, and when."""

    admin_email: str
    viewed_user_id: int
    viewed_email: str
    at: datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list."""

    items: list[T]
    page: int
    pages: int
    total: int


def _pages(total: int) -> int:
    """How many pages ``total`` rows fill (at least one, for an empty list)."""
    return max(1, -(-total // PAGE_SIZE))


def search_users(query: str = "", page: int = 1) -> Page[UserRow]:
    """Users whose email contains ``query`` (any case), by email, one page of them."""
    condition = User.email.contains(query.strip().lower(), autoescape=True)
    total = db.session.scalar(select(func.count()).select_from(User).where(condition)) or 0
    page = min(max(page, 1), _pages(total))
    rows = db.session.execute(
        select(User.id, User.email, User.active, User.is_admin, User.created_at)
        .where(condition)
        .order_by(User.email)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    db.session.rollback()
    items = [
        UserRow(row.id, row.email, row.active, row.is_admin, aware(row.created_at)) for row in rows
    ]
    return Page(items, page, _pages(total), total)


def record_view(admin_id: int, admin_email: str, viewed_user_id: int) -> None:
    """Write the audit entry for an admin opening a user's page; committed at once."""
    try:
        db.session.execute(
            insert(AdminView).values(
                admin_id=admin_id,
                admin_email=admin_email,
                viewed_user_id=viewed_user_id,
                created_at=utcnow(),
            )
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def views(*, viewed_user_id: int | None = None, page: int = 1) -> Page[ViewRow]:
    """The audit log, newest first: every view, or only those of one user's page."""
    viewed = aliased(User)
    count = select(func.count()).select_from(AdminView)
    statement = (
        select(AdminView.admin_email, AdminView.viewed_user_id, viewed.email, AdminView.created_at)
        .join(viewed, viewed.id == AdminView.viewed_user_id)
        .order_by(AdminView.id.desc())
    )
    if viewed_user_id is not None:
        count = count.where(AdminView.viewed_user_id == viewed_user_id)
        statement = statement.where(AdminView.viewed_user_id == viewed_user_id)
    total = db.session.scalar(count) or 0
    page = min(max(page, 1), _pages(total))
    rows = db.session.execute(statement.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    db.session.rollback()
    items = [ViewRow(row[0], row[1], row[2], aware(row[3])) for row in rows]
    return Page(items, page, _pages(total), total)
