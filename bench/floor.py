"""The floor: the least a Flask app with a Flask-Login session can do for each scenario.

Same framework, same session cookie handling, same gunicorn; no database, no cache, constant
answers. Every figure of the real app is reported as a ratio to this one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Flask, Response, jsonify, redirect, request
from flask_login import LoginManager, UserMixin, login_required, login_user

SETTINGS = {
    "theme": "system",
    "locale": "en",
    "timezone": "UTC",
    "notifications": {"email": True, "push": False, "digest": "weekly"},
    "updated_at": None,
}
ETAG = '"' + hashlib.sha256(json.dumps(SETTINGS).encode()).hexdigest()[:16] + '"'
PAGE = "<!doctype html><html><body><form>" + "<select></select>" * 6 + "</form></body></html>"


class FloorUser(UserMixin):
    """A constant user."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


def create_app() -> Flask:
    """The floor app."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "floor"
    login = LoginManager(app)
    login.user_loader(FloorUser)

    @app.post("/login")
    def login_view() -> Any:
        login_user(FloorUser(request.form.get("email", "1")))
        return redirect("/settings", code=303)

    @app.get("/api/user/settings")
    @login_required
    def get_settings() -> Any:
        if request.headers.get("If-None-Match") == ETAG:
            return Response(status=304, headers={"ETag": ETAG})
        response = jsonify(SETTINGS)
        response.headers["ETag"] = ETAG
        return response

    @app.route("/api/user/settings", methods=["PATCH", "PUT"])
    @login_required
    def patch_settings() -> Any:
        request.get_json()
        response = jsonify(SETTINGS)
        response.headers["ETag"] = ETAG
        return response

    @app.get("/settings")
    @login_required
    def settings_page() -> Any:
        return PAGE

    @app.post("/settings/<path:field>")
    @app.post("/settings")
    @login_required
    def save_field(field: str = "") -> Any:
        return "<div>saved</div>"

    return app


app = create_app()
