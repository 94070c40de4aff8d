"""The dashboard: a server-rendered shell for the single-page client of the JSON API."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
def index() -> ResponseReturnValue:
    """The dashboard shell; ``static/js/dashboard.js`` fills it from the API."""
    return render_template("dashboard/index.html")
