"""The CSRF token a response hands out: Flask-WTF's, signed once per session and process.

Flask-WTF signs the session's token anew for each request that shows it (JSON, zlib, base64
and an HMAC over the token and a timestamp: a seventh of a kept settings page's time). The
timestamp is checked only under ``WTF_CSRF_TIME_LIMIT``; without one, as this app runs,
every signature of the session's token is valid for as long as the session, so the first
one a process signs is handed out again. Tokens stay per session: another session (another
browser, a sign-in after a sign-out) has another raw token, and so another signed one.
"""

from __future__ import annotations

from flask import Flask, current_app, g, session
from flask_wtf.csrf import generate_csrf

from app.http.kept import Kept, of_current_app

#: Sessions whose signed token a process keeps: a token is about a hundred bytes.
KEPT_TOKENS = 4096

#: Where Flask-WTF keeps the session's raw token, and the request's signed one in ``g``,
#: unless ``WTF_CSRF_FIELD_NAME`` says otherwise.
DEFAULT_FIELD_NAME = "csrf_token"


def request_token() -> str:
    """The signed CSRF token for this request's session, as ``generate_csrf`` gives it."""
    config = current_app.config
    field_name = config.get("WTF_CSRF_FIELD_NAME", DEFAULT_FIELD_NAME)
    if field_name in g or config["WTF_CSRF_TIME_LIMIT"] is not None:
        return str(generate_csrf())
    signed_tokens: Kept[str, str] = of_current_app("csrf_signed_tokens", KEPT_TOKENS)
    raw = session.get(field_name)
    signed = signed_tokens.get(raw) if isinstance(raw, str) else None
    if signed is not None:
        # Flask-WTF's per-request copy: a form's token field rendered later shows the same.
        setattr(g, field_name, signed)
        return signed
    signed = str(generate_csrf())
    # Read again: Flask-WTF gives a session without a raw token its first one.
    raw = session.get(field_name)
    if isinstance(raw, str):
        signed_tokens.put(raw, signed)
    return signed


def init_app(app: Flask) -> None:
    """Every page's ``csrf_token()`` (the meta tag, the forms) from ``request_token``.

    After ``CSRFProtect.init_app``, which sets Flask-WTF's own.
    """
    app.jinja_env.globals["csrf_token"] = request_token
