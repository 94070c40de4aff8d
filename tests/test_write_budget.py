"""The write budget: each valid write of a user's settings counted once, on every host.

The count rides on the write's tombstone script (no round trip of its own); these tests
drive real requests through the app on both databases, two app instances sharing one Redis,
Redis out of reach and no Redis at all, and check that a refused write leaves everything as
it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import counters
from app.preferences import budget, history, service
from app.preferences import snapshot as snapshots
from tests.conftest import count_sql, csrf_token
from tests.test_cache import CLOSED_PORT_URL, make_app, sign_in, theme_via_api

__all__ = ["make_app"]

#: An hour-long window: not crossed while a test runs (windows end on the clock).
THREE_AN_HOUR = {"RATELIMIT_WRITES": "3 per hour"}


def put_theme(client: FlaskClient, theme: str, **headers: str) -> Any:
    token = csrf_token(client, "/settings")
    return client.put(
        "/api/user/settings", json={"theme": theme}, headers={"X-CSRFToken": token, **headers}
    )


def save_theme_field(client: FlaskClient, theme: str) -> Any:
    """The settings page's htmx save of its theme field."""
    token = csrf_token(client, "/settings")
    return client.post(
        "/settings/theme",
        data={"theme": theme},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )


def history_length(app: Flask, user: int) -> int:
    with app.app_context():
        return len(history.history(user, limit=100))


@pytest.mark.parametrize("config_overrides", [THREE_AN_HOUR])
def test_invalid_and_conflicting_writes_spend_nothing(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    assert [put_theme(signed_in, "purple").status_code for _ in range(5)] == [422] * 5
    stale = put_theme(signed_in, "dark", **{"If-Match": f'"{user}.999.0"'})
    assert stale.status_code == 412
    statuses = [put_theme(signed_in, theme).status_code for theme in ("dark", "light", "dark")]
    assert statuses == [200] * 3
    refused = put_theme(signed_in, "light")
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert theme_via_api(signed_in) == "dark"
    assert history_length(app, user) == 3


@pytest.mark.parametrize("config_overrides", [THREE_AN_HOUR])
def test_writes_that_change_nothing_count_too(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    statuses = [put_theme(signed_in, "dark").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert history_length(app, user) == 1


@pytest.mark.parametrize("config_overrides", [THREE_AN_HOUR])
def test_a_refused_write_leaves_the_row_history_and_cached_entry_as_they_were(
    app: Flask, signed_in: FlaskClient, user: int, backend: str
) -> None:
    for theme in ("dark", "light", "dark"):
        assert put_theme(signed_in, theme).status_code == 200
    theme_via_api(signed_in)  # the entry is cached
    with count_sql(app) as statements:
        assert put_theme(signed_in, "light").status_code == 429
    if backend == "postgresql":
        # Refused by the tombstone's script, before the write's one statement was sent.
        assert statements == []
    with count_sql(app) as statements:
        assert theme_via_api(signed_in) == "dark"
    # No tombstone was placed: the entry still serves, with no SQL.
    assert statements == []
    with app.app_context():
        assert snapshots.load_snapshot(user).choices == {"theme": "dark"}  # type: ignore[union-attr]
    assert history_length(app, user) == 3


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_WRITES": "4 per hour"}])
def test_the_api_the_page_and_imports_draw_on_one_budget(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    token = csrf_token(signed_in, "/settings")
    assert put_theme(signed_in, "dark").status_code == 200
    assert save_theme_field(signed_in, "light").status_code == 200
    exported = signed_in.get("/api/user/settings/export")
    assert exported.status_code == 200
    document = exported.get_json()
    document["settings"]["theme"] = "system"
    imported = signed_in.post(
        "/api/user/settings/import", json=document, headers={"X-CSRFToken": token}
    )
    assert imported.status_code == 200, imported.get_data(as_text=True)
    assert put_theme(signed_in, "dark").status_code == 200
    refused = save_theme_field(signed_in, "light")
    assert refused.status_code == 429
    assert refused.headers["HX-Retarget"] == "#live-region"
    assert int(refused.headers["Retry-After"]) >= 1
    assert theme_via_api(signed_in) == "dark"


@pytest.mark.parametrize("config_overrides", [THREE_AN_HOUR])
def test_every_host_draws_on_the_same_budget(
    app: Flask, make_app: Callable[..., Flask], user: int
) -> None:
    other = make_app(**THREE_AN_HOUR)
    here, there = sign_in(app), sign_in(other)
    assert put_theme(here, "dark").status_code == 200
    assert put_theme(there, "light").status_code == 200
    assert put_theme(here, "dark").status_code == 200
    assert put_theme(there, "light").status_code == 429
    assert put_theme(here, "light").status_code == 429
    assert theme_via_api(there) == "dark"


@pytest.mark.parametrize(
    "config_overrides",
    [
        {"REDIS_URL": CLOSED_PORT_URL, **THREE_AN_HOUR},
        {"REDIS_URL": None, **THREE_AN_HOUR},
    ],
    ids=["redis-down", "no-redis"],
)
def test_without_redis_writes_are_counted_in_this_process(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    statuses = [put_theme(signed_in, theme).status_code for theme in ("dark", "light") * 2]
    assert statuses == [200, 200, 200, 429]
    assert theme_via_api(signed_in) == "dark"
    assert history_length(app, user) == 3


def test_a_write_that_tries_twice_is_counted_once(app: Flask, user: int) -> None:
    """A compare-and-set that lost to another write takes the locked way: one write still."""
    with app.app_context():
        stale = snapshots.load_snapshot(user)
        service.update_settings(user, {"theme": "light"})  # moves the row past ``stale``
        from app.preferences import writes

        with budget.charged_to(user, "1 per hour"):
            written = writes.write(
                user, lambda choices: {**choices, "theme": "dark"}, known=stale, source="api"
            )
        assert written.after.choices["theme"] == "dark"
        with budget.charged_to(user, "2 per hour"):
            service.update_settings(user, {"theme": "system"})
        with budget.charged_to(user, "2 per hour"), pytest.raises(budget.Exhausted):
            service.update_settings(user, {"theme": "light"})
        assert snapshots.get_settings(user).values["theme"] == "system"


def test_writes_without_a_budget_are_never_limited(app: Flask, user: int) -> None:
    with app.app_context():
        for theme in ("dark", "light") * 5:
            service.update_settings(user, {"theme": theme})
        assert snapshots.get_settings(user).values["theme"] == "light"


def test_windows_end_on_the_clock_and_a_refused_attempt_costs_nothing() -> None:
    short, long = counters.windows("2 per hour; 3 per day", "w")
    index = int(short[0].rsplit(":", 1)[1])
    assert short == (f"w:3600:{index}", 2, (index + 1) * 3600)
    assert index * 3600 <= time.time() < (index + 1) * 3600 + 1
    assert long[0].startswith("w:86400:") and long[1] == 3
    local = counters.LocalWindows()
    waits = [local.count([short, long]) for _ in range(3)]
    assert waits[:2] == [0, 0]
    assert 1 <= waits[2] <= 3600
    # The third was refused by the hour's window and not counted in the day's.
    assert local.counters[long[0]][0] == 2


def test_a_full_window_in_redis_refuses_without_counting(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    from app.preferences.cache.backend import RedisBackend

    found = RedisBackend(redis_client, "redis", key_prefix, 300, 5.0)
    counted = counters.windows("1 per hour; 5 per day", key_prefix + "budget")
    assert found.place_tombstone(7, 1, "~a", counted) == 0
    assert found.place_tombstone(7, 2, "~b", counted) > 0
    assert redis_client.get(key_prefix + "user_settings:7") == b"1|~a"
    assert int(redis_client.get(counted[1][0]) or 0) == 1
    assert 0 < redis_client.ttl(counted[0][0]) <= 3600
