"""The bound: the floor plus exactly the round trips the app's promises cost, and nothing else.

The floor (bench/floor.py) answers from constants, so some of the app's distance to it is not
overhead but physics: docs/caching.md promises that no worker on any host serves an old value
once a write has returned, which a process cannot know without asking the shared store, and a
write must be durable and leave history. This server does only those round trips, with the
fewest statements they can take, and Python's least work around them:

- a read: one Redis ``MGET`` of the user's session version and cached settings, the cached
  document sent as it is stored (the app's cache entry is the same size);
- a page: the same ``MGET``, then a constant page as long as the app's settings page;
- a write: one Lua script that reads the session version and cached settings, counts the
  user's write limit and places the tombstone; one self-committing PostgreSQL statement (the
  ``UPDATE`` with its history row in a CTE, fsync on); the refresh of the cached document.
  Three round trips: the refresh must follow the commit, and the commit the tombstone.

Nothing else: no CSRF check, no validation, no security headers, no templates. The app's ratio
to this server is how close it comes to what its guarantees allow; the bound's own ratio to
the floor is the most any implementation of them could reach on this machine.

It writes the plain peer's copy of the users (``naive_users``, made by ``naive.prepare``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

import psycopg
import redis
from flask import Flask, Response, abort, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

#: A write's first round trip: the session version and cached settings, one write counted
#: against the user's budget and the tombstone placed.
BEGIN_WRITE = """
local count = redis.call('INCR', KEYS[3])
if count == 1 then redis.call('EXPIRE', KEYS[3], 60) end
redis.call('SET', KEYS[4], ARGV[1], 'PX', 500)
return redis.call('MGET', KEYS[1], KEYS[2])
"""
WRITE = """
WITH updated AS (
    UPDATE naive_users SET preferences = preferences || %(change)s::jsonb
    WHERE id = %(id)s RETURNING id
)
INSERT INTO bound_history (user_id, key, value) SELECT id, %(key)s, %(value)s FROM updated
"""
DEFAULTS: dict[str, Any] = {
    "theme": "system",
    "locale": "en",
    "timezone": "UTC",
    "notifications": {"email": True, "push": False, "digest": "weekly"},
    "updated_at": None,
}


class BoundUser(UserMixin):
    """A user known by id only: the request asks Redis for everything else."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


class Store:
    """One Redis client and one PostgreSQL connection per process, as the app keeps pools."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis = redis.Redis.from_url(redis_url)
        self.begin_write = self.redis.register_script(BEGIN_WRITE)
        self._local = threading.local()

    @property
    def database(self) -> psycopg.Connection[Any]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = psycopg.connect(self.database_url, autocommit=True)
            self._local.connection = connection
        return connection

    def read(self, user_id: str) -> tuple[bytes, bytes]:
        """The user's session version and cached document: the one round trip of a read."""
        auth, document = self.redis.mget(f"bound:auth:{user_id}", f"bound:settings:{user_id}")
        if auth is None or document is None:
            abort(401)
        return auth, document

    def write(self, user_id: str, key: str, value: Any) -> bytes:
        """Read, count and tombstone; commit; refresh: the three round trips of a write."""
        auth, stored = self.begin_write(
            keys=[
                f"bound:auth:{user_id}",
                f"bound:settings:{user_id}",
                f"bound:limit:{user_id}",
                f"bound:tombstone:{user_id}",
            ],
            args=["1"],
        )
        if auth is None or stored is None:
            abort(401)
        change = {key: value}
        self.database.execute(
            WRITE, {"change": json.dumps(change), "id": int(user_id), "key": key, "value": value}
        )
        document = json.loads(stored)
        head, dot, tail = key.partition(".")
        if dot:
            document[head][tail] = value
        else:
            document[key] = value
        encoded = json.dumps(document).encode()
        self.redis.set(f"bound:settings:{user_id}", encoded, ex=300)
        return encoded


def etag_of(document: bytes) -> str:
    return '"' + hashlib.sha256(document).hexdigest()[:16] + '"'


def create_app() -> Flask:
    """The bound on ``DATABASE_URL`` and ``REDIS_URL``."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "bound"
    store = Store(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    page = b"<!doctype html>" + b" " * int(os.environ.get("BOUND_PAGE_BYTES", "50000"))
    login = LoginManager(app)
    login.user_loader(BoundUser)

    @app.post("/login")
    def login_view() -> Any:
        row = store.database.execute(
            "SELECT id FROM naive_users WHERE email = %s", (request.form["email"],)
        ).fetchone()
        if row is None:
            abort(401)
        user_id = str(row[0])
        store.redis.set(f"bound:auth:{user_id}", b"1")
        store.redis.set(f"bound:settings:{user_id}", json.dumps(DEFAULTS).encode(), ex=3600)
        login_user(BoundUser(user_id))
        return redirect("/settings", code=303)

    def document_response(document: bytes) -> Response:
        etag = etag_of(document)
        if request.method == "GET" and request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(document, mimetype="application/json", headers={"ETag": etag})

    @app.get("/api/user/settings")
    @login_required
    def get_settings() -> Any:
        _, document = store.read(current_user.id)
        return document_response(document)

    @app.route("/api/user/settings", methods=["PATCH", "PUT"])
    @login_required
    def patch_settings() -> Any:
        document = request.get_json()
        if not isinstance(document, dict) or "theme" not in document:
            abort(400)
        return document_response(store.write(current_user.id, "theme", document["theme"]))

    @app.get("/settings")
    @login_required
    def settings_page() -> Any:
        store.read(current_user.id)
        return Response(page, mimetype="text/html")

    @app.post("/settings/<field>")
    @login_required
    def save_field(field: str) -> Any:
        key = field.replace("__", ".")
        store.write(current_user.id, key, request.form.get(field))
        return f"<p>Saved {key}.</p>"

    return app


def prepare(database_url: str) -> None:
    """The history table the bound's writes append to (the users are the peer's copy)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bound_history (id bigserial PRIMARY KEY, "
            "user_id integer NOT NULL, key text NOT NULL, value text, "
            "changed_at timestamptz NOT NULL DEFAULT now())"
        )


if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
    app = create_app()
