"""bp "admin" (/admin): find users, read one user's settings and history; nothing writable."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.admin import service as admin
from app.errors import error_response
from app.http import args
from app.models import MAX_ID
from app.preferences import display, history, registry, transfer
from app.preferences.snapshot import load_snapshot
from app.text import gettext

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: How many changes a user's admin page lists at a time.
HISTORY_LENGTH = 50


@bp.before_request
def require_admin() -> None:
    """403 for anyone but an admin, before any lookup, so probing reveals nothing.

    The app's sign-in check has already sent anonymous visitors to the sign-in page.
    """
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)


@bp.get("/users")
def users() -> ResponseReturnValue:
    """Users whose email contains ``q``, a page at a time."""
    query = request.args.get("q", "")[:254]
    if not query.isprintable():
        # A NUL byte never reaches the database, which would refuse it as an error.
        return error_response(400, gettext("Search for printable characters only."))
    found = admin.search_users(query, args.lenient_page())
    return render_template("admin/users.html", query=query, found=found)


def _same_origin_navigation() -> bool:
    """Whether the browser says this request comes from the app's own pages, or was typed.

    A cross-site page can make an admin's browser open a user's page (``SameSite=Lax``
    cookies go along with top-level GETs); such a visit shows nothing and records nothing.
    Clients that send no ``Sec-Fetch-Site`` are taken at their word.
    """
    return request.headers.get("Sec-Fetch-Site", "same-origin") in {"same-origin", "none"}


@bp.get("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    """One user's effective settings and history, read-only; the view is audited."""
    snapshot = load_snapshot(user_id) if user_id <= MAX_ID else None
    if snapshot is None:
        abort(404)
    if not _same_origin_navigation():
        return render_template("admin/confirm_view.html", user_id=user_id)
    admin.record_view(current_user.id, current_user.email, user_id)
    before_id = args.lenient_id("before")
    recent = history.history(user_id, before_id=before_id, limit=HISTORY_LENGTH + 1)
    settings: list[dict[str, Any]] = [
        {
            "label": str(pref.label),
            "key": pref.key,
            "value": display.display_value(pref.key, snapshot.settings.values[pref.key]),
            "chosen": pref.key in transfer.exportable(snapshot.choices),
        }
        for pref in registry.PREFERENCES
    ]
    return render_template(
        "admin/user.html",
        person=snapshot,
        settings=settings,
        history=display.rows(recent[:HISTORY_LENGTH]),
        older=recent[HISTORY_LENGTH - 1].id if len(recent) > HISTORY_LENGTH else None,
        views=admin.views(viewed_user_id=user_id),
    )


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    """Every admin view of a user's page, newest first."""
    return render_template("admin/audit.html", views=admin.views(page=args.lenient_page()))
