"""The settings page and its htmx fragments."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

bp = Blueprint("settings", __name__)


@bp.get("/settings")
def index() -> ResponseReturnValue:
    """The settings page for the signed-in user."""
    return render_template("settings/index.html", settings=current_user.settings)
