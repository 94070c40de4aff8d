"""Creating and authenticating users; shared by the sign-in pages and the CLI."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User
from app.preferences import account

# Argon2id with the library's defaults (RFC 9106 low-memory profile): memory-hard.
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


class EmailTaken(Exception):
    """An account with this email already exists."""


def normalize_email(email: str) -> str:
    """The stored form of an email address: trimmed and lower-cased."""
    return email.strip().lower()


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Create an active user with no preferences chosen yet.

    :param is_admin: may open the read-only admin pages.
    :raise EmailTaken: the email is in use, whatever its case.
    """
    user = User(
        email=normalize_email(email), password_hash=hash_password(password), is_admin=is_admin
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:
        # The unique constraint, not a prior lookup, decides: two sign-ups can race.
        db.session.rollback()
        raise EmailTaken(email) from exc
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, or ``None`` without saying why."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    db.session.rollback()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        account.update_account(user.id, password_hash=hash_password(password))
    return user


def change_password(user_id: int, password: str) -> None:
    """Set a new password and end every existing session of the user."""
    account.update_account(user_id, password_hash=hash_password(password))
