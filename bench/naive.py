"""The plain peer: the settings app a competent developer writes in an afternoon.

Flask, Flask-Login and Flask-SQLAlchemy with no cache and no history: the user loader reads the
row on every request, preferences are one JSONB column, a write validates a dict against the
allowed values and commits, the settings page is a small Jinja template with one ``<select>``
per key. It serves the same routes as the app and the floor, so ``make bench`` drives all three
exactly alike; the app should beat it on every scenario, because the app has a cache.

It reads its own copy of the benchmark's users (``naive_users``, made by ``prepare``), so its
writes never change a row behind the app's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytz
from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

ALLOWED: dict[str, tuple[Any, ...]] = {
    "theme": ("light", "dark", "system"),
    "locale": ("en", "de", "fr", "ja"),
    "timezone": tuple(pytz.common_timezones),
    "notifications.email": (True, False),
    "notifications.push": (True, False),
    "notifications.digest": ("off", "daily", "weekly"),
}
DEFAULTS: dict[str, Any] = {
    "theme": "system",
    "locale": "en",
    "timezone": "UTC",
    "notifications.email": True,
    "notifications.push": False,
    "notifications.digest": "weekly",
}
PAGE = """<!doctype html>
<html lang="en" data-theme="{{ values.theme }}">
<head><meta charset="utf-8"><title>Settings</title></head>
<body>
<h1>Settings</h1>
<form method="post" action="/settings">
{% for key, options in allowed.items() %}
  <label for="{{ key }}">{{ key }}</label>
  <select id="{{ key }}" name="{{ key }}">
  {% for option in options %}
    <option value="{{ option }}"{{ " selected" if option == values[key] }}>{{ option }}</option>
  {% endfor %}
  </select>
{% endfor %}
<button>Save</button>
</form>
</body>
</html>
"""

db = SQLAlchemy()


class NaiveUser(db.Model, UserMixin):
    """One user: email and a JSONB document of the keys they chose."""

    __tablename__ = "naive_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    def effective(self) -> dict[str, Any]:
        """Every key with the stored value or its default, nested as the API speaks."""
        stored = self.preferences or {}
        flat = {key: stored.get(key, default) for key, default in DEFAULTS.items()}
        nested: dict[str, Any] = {}
        for key, value in flat.items():
            head, dot, tail = key.partition(".")
            if dot:
                nested.setdefault(head, {})[tail] = value
            else:
                nested[key] = value
        return nested


def flatten(document: dict[str, Any]) -> dict[str, Any]:
    """``{"notifications": {"push": true}}`` as ``{"notifications.push": true}``."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": inner for name, inner in value.items()})
        else:
            flat[key] = value
    return flat


def save(user: NaiveUser, changes: dict[str, Any]) -> None:
    """Validate ``changes`` against the allowed values and commit them, or answer 422."""
    errors = {key: "unknown" for key in changes if key not in ALLOWED}
    errors.update(
        {key: "not allowed" for key, value in changes.items() if value not in ALLOWED.get(key, ())}
    )
    if errors:
        abort(Response(json.dumps({"errors": errors}), 422, mimetype="application/json"))
    user.preferences = {**(user.preferences or {}), **changes}
    db.session.commit()


def settings_response(user: NaiveUser) -> Response:
    """The effective settings with an ETag over the body."""
    body = user.effective()
    etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16] + '"'
    if request.method == "GET" and request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})
    response = jsonify(body)
    response.headers["ETag"] = etag
    return response


def psycopg_url(url: str) -> str:
    """``postgresql://`` with the psycopg 3 driver the app uses too."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def create_app() -> Flask:
    """The plain peer on ``DATABASE_URL``."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "naive"
    app.config["SQLALCHEMY_DATABASE_URI"] = psycopg_url(os.environ["DATABASE_URL"])
    db.init_app(app)
    login = LoginManager(app)
    login.user_loader(lambda user_id: db.session.get(NaiveUser, int(user_id)))

    @app.post("/login")
    def login_view() -> Any:
        user = db.session.scalar(db.select(NaiveUser).filter_by(email=request.form["email"]))
        if user is None:
            abort(401)
        login_user(user)
        return redirect("/settings", code=303)

    @app.get("/api/user/settings")
    @login_required
    def get_settings() -> Any:
        return settings_response(current_user)

    @app.route("/api/user/settings", methods=["PATCH", "PUT"])
    @login_required
    def patch_settings() -> Any:
        document = request.get_json()
        if not isinstance(document, dict):
            abort(400)
        save(current_user, flatten(document))
        return settings_response(current_user)

    @app.get("/settings")
    @login_required
    def settings_page() -> Any:
        values = flatten(current_user.effective())
        return render_template_string(PAGE, allowed=ALLOWED, values=values)

    @app.post("/settings/<field>")
    @login_required
    def save_field(field: str) -> Any:
        key = field.replace("__", ".")
        save(current_user, {key: request.form.get(field)})
        return f"<p>Saved {key}.</p>"

    return app


def prepare(database_url: str) -> None:
    """Copy the benchmark's users into ``naive_users``, once per user count."""
    from sqlalchemy import create_engine, text

    engine = create_engine(psycopg_url(database_url))
    with engine.begin() as connection:
        NaiveUser.metadata.create_all(connection)
        users = connection.scalar(text("SELECT count(*) FROM users"))
        copied = connection.scalar(text("SELECT count(*) FROM naive_users"))
        if users != copied:
            connection.execute(text("TRUNCATE naive_users"))
            connection.execute(
                text(
                    "INSERT INTO naive_users (id, email, preferences) "
                    "SELECT id, email, preferences - '_v' FROM users"
                )
            )
    engine.dispose()


if os.environ.get("DATABASE_URL"):
    app = create_app()
