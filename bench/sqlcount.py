"""SQL statements per request of each benchmark scenario, counted with SQLAlchemy events.

Runs the real app in-process against the benchmark database and Redis; prints JSON.
``scenario_calls`` is shared with ``bench.profile``, which profiles the same requests.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from flask import Flask
from sqlalchemy import event

from app import create_app
from app.extensions import db
from bench.common import CSRF_META, PASSWORD

REQUESTS = 50


def main(database_url: str, redis_url: str) -> None:
    """Count statements over ``REQUESTS`` requests per scenario, after one warm-up each."""
    results = count(database_url, redis_url, cold=False)
    results["cold_get"] = count(database_url, redis_url, cold=True)["warm_get"]
    print(json.dumps(results))


def scenario_calls(
    database_url: str, redis_url: str, *, cold: bool
) -> tuple[Flask, dict[str, Callable[[], object]]]:
    """The app in-process, signed in as a bench user, and one request per scenario.

    In the order given, the reads come before the writes, so the conditional GET's ETag
    (taken here) still matches and it answers 304.

    :param cold: disable the cache, so every read asks the database.
    """
    config = {
        "APP_ENV": "development",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "sql-count"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_LOGIN": "100000 per minute",
        "RATELIMIT_WRITES": "1000000 per minute",
    }
    if cold:
        config["CACHE_TYPE"] = "NullCache"
    app = create_app(config)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/login", data={"email": "bench2@example.com", "password": PASSWORD, "csrf_token": token}
    )
    match = CSRF_META.search(client.get("/settings").get_data(as_text=True))
    csrf = match.group(1) if match else ""
    etag = client.get("/api/user/settings").headers["ETag"]
    flip = iter(range(10**9))
    calls: dict[str, Callable[[], object]] = {
        "warm_get": lambda: client.get("/api/user/settings"),
        "conditional_get": lambda: client.get(
            "/api/user/settings", headers={"If-None-Match": etag}
        ),
        "patch": lambda: client.patch(
            "/api/user/settings",
            json={"theme": "dark" if next(flip) % 2 else "light"},
            headers={"X-CSRFToken": csrf},
        ),
        "settings_page": lambda: client.get("/settings"),
        "htmx_save": lambda: client.post(
            "/settings/notifications__digest",
            data={"notifications__digest": "daily" if next(flip) % 2 else "weekly"},
            headers={"X-CSRFToken": csrf, "HX-Request": "true"},
        ),
    }
    return app, calls


def count(database_url: str, redis_url: str, *, cold: bool) -> dict[str, float]:
    """Statements per request of each scenario; ``cold`` disables the cache."""
    app, scenarios = scenario_calls(database_url, redis_url, cold=cold)
    count = 0

    def counter(*_: object) -> None:
        nonlocal count
        count += 1

    results: dict[str, float] = {}
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    for name, call in scenarios.items():
        call()
        count = 0
        for _ in range(REQUESTS):
            call()
        results[name] = count / REQUESTS
    with app.app_context():
        db.engine.dispose()
    return results


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
