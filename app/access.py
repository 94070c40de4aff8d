"""Who may reach what: every endpoint but a few needs a signed-in user."""

from __future__ import annotations

from flask import request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.extensions import login_manager

#: Endpoints anyone may reach; everything else needs a signed-in user. The API's own
#: description and its reference page are public, so code generators need no account.
PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "auth.register", "health.healthz", "static", "api.get_openapi", "api.docs"}
)


def is_public() -> bool:
    """Whether this request's endpoint is open to anyone (or matched none at all)."""
    return request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None


def require_login() -> ResponseReturnValue | None:
    """The app's first gate: the sign-in page (or a 401) for anyone not signed in."""
    if is_public() or current_user.is_authenticated:
        return None
    response: ResponseReturnValue = login_manager.unauthorized()
    return response
