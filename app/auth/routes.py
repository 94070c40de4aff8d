"""Registration, sign-in and sign-out pages."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from app.auth import service, throttle
from app.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from app.models import User
from app.preferences import account
from app.preferences.session import SessionUser
from app.preferences.snapshot import get_snapshot
from app.text import gettext

bp = Blueprint("auth", __name__)


@bp.after_request
def remember_device(response: Response) -> Response:
    """After a successful sign-in, mark this browser as one the account uses."""
    email = g.get("signed_in_email")
    if email:
        response.set_cookie(
            throttle.DEVICE_COOKIE,
            throttle.device_token(email),
            max_age=throttle.DEVICE_MAX_AGE,
            httponly=True,
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
            samesite="Lax",
        )
    return response


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a local path only, never another site."""
    text = target or ""
    parts = urlsplit(text)
    local = text.startswith("/") and not text.startswith("//")
    # Control characters (CR/LF above all) would end up in the Location header.
    printable = text.isprintable() and " " not in text
    # Someone sent to sign in from the sign-out page did not come to sign out again.
    useful = parts.path != url_for("auth.logout")
    plain = not parts.scheme and not parts.netloc and "\\" not in text
    if local and printable and useful and plain:
        return text
    return url_for("settings.index")


def _sign_in(user_id: int, remember: bool) -> None:
    """Start a fresh session for the user, as of their current auth version."""
    # A fresh session on sign-in, so nothing set before it (fixation) carries over.
    session.clear()
    snapshot = get_snapshot(user_id)
    if snapshot is not None:
        login_user(SessionUser(snapshot), remember=remember)


def _too_many(template: str, form: Any, verdict: throttle.Verdict) -> ResponseReturnValue:
    """429 with the form as it was sent, saying when to try again (counted down by auth.js)."""
    response = make_response(
        render_template(template, form=form, retry_after=verdict.retry_after), 429
    )
    response.headers["Retry-After"] = str(verdict.retry_after)
    return response


def _client() -> str:
    """The client's address, as ``TRUSTED_PROXIES`` lets the app see it.

    An IPv6 client counts as its /64: one host has a whole network of addresses to use.
    """
    address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def _check_password(
    email: str, password: str, *, trust_device: bool = True
) -> tuple[User | None, throttle.Verdict]:
    """The account if ``password`` is right, under the sign-in throttles.

    Per client and per account, counted before the hash; a refused verdict means no
    attempt was made. A right password gives the client's slot back and clears the
    account's back-off.

    :param trust_device: let a browser the account signed in from skip the back-off.
    """
    limits = str(current_app.config["RATELIMIT_LOGIN"])
    by_client = throttle.count(limits, "signin", _client())
    if not by_client.allowed:
        return None, by_client
    # A browser this account signed in from before is not held up by the account's
    # back-off, so an attacker guessing elsewhere cannot lock its owner out.
    token = request.cookies.get(throttle.DEVICE_COOKIE)
    known = trust_device and throttle.known_device(token, email)
    by_account = throttle.ALLOWED if known else throttle.account_attempt(email)
    if not by_account.allowed:
        # Not an attempt after all: the client's allowance is not spent on it.
        throttle.give_back(by_client)
        return None, by_account
    user = service.authenticate(email, password)
    if user is not None:
        throttle.give_back(by_client)
        throttle.account_succeeded(email)
        g.signed_in_email = email
    return user, by_account


def _pause_warning(form: Any, verdict: throttle.Verdict) -> None:
    """Warn that the next wrong password makes the account wait."""
    # The attempt after the last free one is the first to wait.
    if verdict.remaining == 1:
        form.form_errors.append(
            gettext("After another wrong password, signing in to this account will pause.")
        )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The sign-in form; on success, where the user was going."""
    if current_user.is_authenticated:
        return redirect(url_for("settings.index"))
    form = LoginForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    if form.validate_on_submit():
        email = service.normalize_email(form.email.data)
        user, verdict = _check_password(email, form.password.data)
        if not verdict.allowed:
            return _too_many("auth/login.html", form, verdict)
        if user is not None:
            _sign_in(user.id, bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")), code=303)
        # One message whether the email exists or not.
        form.form_errors.append(gettext("Wrong email or password."))
        _pause_warning(form, verdict)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    """The sign-up form; then the sign-in page, whether the email was new or not.

    Answering an email that has an account differently from a new one would tell anyone
    which addresses have accounts; both cost one password hash.
    """
    if current_user.is_authenticated:
        return redirect(url_for("settings.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        verdict = throttle.count(str(current_app.config["RATELIMIT_REGISTER"]), "signup", _client())
        if not verdict.allowed:
            return _too_many("auth/register.html", form, verdict)
        email = service.normalize_email(form.email.data)
        with contextlib.suppress(service.EmailTaken):
            service.create_user(email, form.password.data)
        flash(
            gettext(
                "If %(email)s had no account yet, it has one now: sign in with the password "
                "you chose. If it already had one, sign in with that account's password.",
                email=email,
            ),
            "info",
        )
        return redirect(url_for("auth.login", email=email), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    """The password-change form; on success the settings page, other sessions signed out."""
    form = ChangePasswordForm(current_user.email)
    if request.method == "POST":
        valid = form.validate()
        current = form.current_password
        if current.data and not current.errors:
            # Checked even when the new password has problems, so every error shows at once;
            # under the sign-in throttles, so this form cannot be used to guess either.
            # Never trusting the device: whoever holds this session (a stolen one, too) has
            # the device cookie, and the owner loses at most a short wait.
            user, verdict = _check_password(current_user.email, current.data, trust_device=False)
            if not verdict.allowed:
                return _too_many("auth/change_password.html", form, verdict)
            if user is None:
                current.errors.append(gettext("This is not your current password."))
                _pause_warning(form, verdict)
            elif valid and form.new_password.data == current.data:
                form.new_password.errors.append(
                    gettext("The new password is your current one. Choose a different one.")
                )
            elif valid:
                return _changed(current_user.id, form.new_password.data)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/change_password.html", form=form), status


def _changed(user_id: int, password: str) -> ResponseReturnValue:
    """Set the new password and keep this session, now the only one, signed in."""
    # The remember cookie of this device, if it has one, is renewed rather than lost.
    remember = str(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    kept = remember in request.cookies
    service.change_password(user_id, password)
    # The new auth version ended every session, this one too; sign this one back in.
    _sign_in(user_id, kept)
    flash(gettext("Your password was changed. Other devices have been signed out."), "success")
    return redirect(url_for("settings.index"), code=303)


@bp.get("/logout")
def confirm_logout() -> ResponseReturnValue:
    """A page asking to confirm signing out, for links and typed addresses."""
    return render_template("auth/logout.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session here and everywhere, then show the sign-in page."""
    # Worded before signing out, while the user's language still applies.
    message = gettext("You have been signed out.")
    account.update_account(current_user.id, sign_out=True)
    # Cleared first: Flask-Login records in the session that the remember cookie must go.
    session.clear()
    logout_user()
    flash(message, "info")
    return redirect(url_for("auth.login"), code=303)
