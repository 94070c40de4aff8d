"""Sign-in and registration forms."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, PasswordField
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from app.auth.service import MIN_PASSWORD_LENGTH
from app.text import lazy_gettext as _l


def printable(form: FlaskForm, field: Field) -> None:
    """Refuse control characters (a NUL byte above all) before they reach the database."""
    if field.data and not str(field.data).isprintable():
        raise ValidationError(_l("Use printable characters only."))


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
        validators=[
            InputRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=1024,
                message=_l("Use at least %(min)d characters.", min=MIN_PASSWORD_LENGTH),
            ),
        ],
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )
