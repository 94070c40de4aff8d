"""Registration, sign-in and sign-out pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from app.auth import service
from app.auth.forms import LoginForm, RegisterForm
from app.extensions import limiter
from app.models import SessionUser
from app.preferences import service as preferences
from app.text import gettext

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a local path only, never another site."""
    parts = urlsplit(target or "")
    local = target and target.startswith("/") and not target.startswith("//")
    if local and not parts.scheme and not parts.netloc and "\\" not in (target or ""):
        return str(target)
    return url_for("settings.index")


def _sign_in(user_id: int, remember: bool) -> None:
    # A fresh session on sign-in, so nothing set before it (fixation) carries over.
    session.clear()
    snapshot = preferences.get_snapshot(user_id)
    if snapshot is not None:
        login_user(SessionUser(snapshot), remember=remember)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: str(current_app.config["RATELIMIT_LOGIN"]),
    methods=["POST"],
    # Only failed attempts count: a successful sign-in redirects with 303.
    deduct_when=lambda response: response.status_code != 303,
)
def login() -> ResponseReturnValue:
    """The sign-in form; on success, where the user was going."""
    if current_user.is_authenticated:
        return redirect(url_for("settings.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = service.authenticate(form.email.data, form.password.data)
        if user is not None:
            _sign_in(user.id, bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")), code=303)
        # One message whether the email exists or not.
        form.form_errors.append(gettext("Wrong email or password."))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    """The sign-up form; a new account is signed in at once."""
    if current_user.is_authenticated:
        return redirect(url_for("settings.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = service.create_user(form.email.data, form.password.data)
        except service.EmailTaken:
            form.email.errors.append(gettext("An account with this email already exists."))
        else:
            _sign_in(user.id, remember=False)
            flash(gettext("Welcome! Your account is ready."), "success")
            return redirect(url_for("settings.index"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session here and everywhere, then show the sign-in page."""
    # Worded before signing out, while the user's language still applies.
    message = gettext("You have been signed out.")
    preferences.update_account(current_user.id, sign_out=True)
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login"), code=303)
