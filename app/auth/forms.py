"""Sign-in, registration and password-change forms."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, PasswordField
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from app.auth import passwords
from app.text import lazy_gettext as _l


def printable(form: FlaskForm, field: Field) -> None:
    """Refuse control characters (a NUL byte above all) before they reach the database."""
    if field.data and not str(field.data).isprintable():
        raise ValidationError(_l("Use printable characters only."))


def password_policy(form: FlaskForm, field: Field) -> None:
    """Apply the password policy, against the email the form says the account has."""
    email = form.account_email() if hasattr(form, "account_email") else None
    found = passwords.problems(field.data or "", email)
    if found:
        raise ValidationError(" ".join(found))


class LoginForm(FlaskForm):
    """Email, password and "remember me"."""

    email = EmailField(_l("Email"), validators=[InputRequired(), Length(max=254), printable])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=1024)])
    remember = BooleanField(_l("Keep me signed in on this device"))


class RegisterForm(FlaskForm):
    """A new account: email and a password typed twice."""

    email = EmailField(
        _l("Email"),
        validators=[
            InputRequired(),
            Length(max=254),
            printable,
            Email(message=_l("Enter a valid email address.")),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), password_policy],
        # Tells password managers what to generate; novalidate leaves the checking to us.
        render_kw={"minlength": passwords.MIN_LENGTH},
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )

    def password_rules(self) -> list[str]:
        """The password policy, shown beside the password field."""
        return passwords.rules()

    def account_email(self) -> str | None:
        """The email the new password must not be: the one typed above it."""
        return str(self.email.data) if self.email.data else None


class ChangePasswordForm(FlaskForm):
    """The current password, then a new one typed twice."""

    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(), Length(max=1024)]
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(), password_policy],
        render_kw={"minlength": passwords.MIN_LENGTH},
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[
            InputRequired(),
            EqualTo("new_password", message=_l("The passwords differ.")),
        ],
    )

    def __init__(self, email: str, *args: Any, **kwargs: Any) -> None:
        """A form for the account with ``email``, which the new password must not be."""
        super().__init__(*args, **kwargs)
        self._email = email

    def password_rules(self) -> list[str]:
        """The password policy, shown beside the new password field."""
        return passwords.rules()

    def account_email(self) -> str | None:
        """The signed-in user's email."""
        return self._email
