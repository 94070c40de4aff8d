"""The settings cache against a real Redis: hot path, invalidation, two instances, outages."""

from __future__ import annotations

import contextlib
import itertools
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update

from app import create_app
from app.extensions import db
from app.models import PendingInvalidation, User
from app.preferences import account, budget, service
from app.preferences import snapshot as snapshots
from app.preferences.cache import breaker, housekeeping, keys
from app.preferences.cache import entries as cache
from app.preferences.cache.backend import RedisBackend
from tests.conftest import PASSWORD, AuthActions, count_sql, csrf_token, make_config
from tests.support import Proxy, RedisServer

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
CACHE_LOGGER = "app.preferences.cache"


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running private Redis, killed at teardown whatever the test did to it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[Proxy]:
    """A cuttable path to the private Redis."""
    path = Proxy(redis_server.port)
    yield path
    path.close()


@pytest.fixture
def make_app(app: Flask, key_prefix: str) -> Iterator[Callable[..., Flask]]:
    """Build more app instances on ``app``'s database and key prefix: other workers or hosts.

    Each has its own in-process state (breaker, outage flag) and its own Redis connections.
    """
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(
            make_config(app.config["SQLALCHEMY_DATABASE_URI"], key_prefix, **overrides)
        )
        apps.append(other)
        return other

    yield make
    for other in apps:
        cache.shutdown(other)
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def sign_in(app: Flask) -> FlaskClient:
    """A client of ``app`` signed in as ``user1@example.com`` through the real login page."""
    client = app.test_client()
    response = AuthActions(client).login("user1@example.com", PASSWORD)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def theme_via_api(client: FlaskClient) -> str:
    """The theme the API reports to ``client``."""
    response = client.get("/api/user/settings")
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["theme"])


def raw_entry(client: redis.Redis, prefix: str, user_id: int) -> tuple[int, dict[str, Any]] | None:
    """The entry Redis holds for ``user_id``: version and decoded snapshot."""
    value = client.get(prefix + keys.settings_key(user_id))
    if value is None:
        return None
    version, _, payload = value.decode().partition("|")
    snapshot = snapshots.Snapshot.from_json(payload)
    return int(version), {
        "id": snapshot.user_id,
        "version": snapshot.version,
        "email": snapshot.email,
        "active": snapshot.active,
        "choices": snapshot.choices,
    }


def write_theme(app: Flask, user_id: int, theme: str) -> None:
    """Save a theme through the service, as a page or API write would."""
    with app.app_context():
        service.update_settings(user_id, {"theme": theme})


def change_row_behind_the_cache(app: Flask, user_id: int, theme: str) -> None:
    """Update the row with plain SQL, bypassing the service and so the cache."""
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == user_id).values(preferences={"theme": theme})
        )
        db.session.commit()


def reconcile(app: Flask) -> int:
    """One reconcile now, as housekeeping runs it; how many pending rows it applied."""
    settings_cache = cache.current()
    return housekeeping.reconcile(
        settings_cache.backend, settings_cache.trust, app.config["CACHE_TRUST_TTL"]
    )


def pending_rows(app: Flask) -> int:
    """How many pending invalidations the database holds."""
    with app.app_context():
        return int(db.session.scalar(text("SELECT count(*) FROM pending_cache_invalidations")))


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Warnings the cache logged."""
    return [r for r in caplog.records if r.name == CACHE_LOGGER and r.levelno == logging.WARNING]


# --- warm and cold reads, invalidation, TTL --------------------------------------------------


def test_cold_read_fills_the_entry_and_warm_read_uses_it(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    assert raw_entry(redis_client, key_prefix, user) is None
    with app.app_context():
        assert snapshots.get_settings(user).values["theme"] == "system"
    version, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
    assert snapshot["id"] == user
    assert snapshot["version"] == version
    assert snapshot["email"] == "user1@example.com"
    assert snapshot["active"] is True
    assert redis_client.ttl(key_prefix + keys.settings_key(user)) > 290
    # One entry per active user is most of Redis's memory: it is kept small.
    assert len(redis_client.get(key_prefix + keys.settings_key(user)) or b"") < 80

    # The warm read does not look at the row: a change made behind the cache stays unseen...
    change_row_behind_the_cache(app, user, "dark")
    with app.app_context():
        assert snapshots.get_settings(user).values["theme"] == "system"
        # ...until the entry is invalidated.
        cache.invalidate(user)
        assert snapshots.get_settings(user).values["theme"] == "dark"


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda uid: service.update_settings(uid, {"theme": "dark"}), "dark"),
        (lambda uid: service.update_from_document(uid, {"theme": "light"}), "light"),
        (lambda uid: service.reset_settings(uid), "system"),
        (lambda uid: service.reset_settings(uid, ["theme"]), "system"),
    ],
)
def test_writes_refresh_the_entry(
    app: Flask,
    user: int,
    redis_client: redis.Redis,
    key_prefix: str,
    write: Callable[[int], Any],
    expected: str,
) -> None:
    write_theme(app, user, "light" if expected != "light" else "dark")
    with app.app_context():
        snapshots.get_settings(user)
        before, _ = raw_entry(redis_client, key_prefix, user) or (0, {})
        write(user)
        after, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
        assert after == before + 1
        assert snapshot["choices"].get("theme", "system") == expected
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == expected
        assert statements == []


def test_an_older_version_never_replaces_a_newer_entry(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        old = snapshots.get_snapshot(user)
        assert old is not None
        service.update_settings(user, {"theme": "dark"})
        # A reader that loaded the row before the write stores its copy late.
        cache.current().backend.store(user, old.version, old.to_json())
        version, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
        assert version == old.version + 1
        assert snapshot["choices"]["theme"] == "dark"


@pytest.mark.parametrize("config_overrides", [{"SETTINGS_CACHE_TTL": 1}])
def test_entry_expires_after_its_ttl(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        snapshots.get_settings(user)
    assert 0 < redis_client.ttl(key_prefix + keys.settings_key(user)) <= 1
    change_row_behind_the_cache(app, user, "dark")
    time.sleep(1.2)
    assert raw_entry(redis_client, key_prefix, user) is None
    with app.app_context():
        assert snapshots.get_settings(user).values["theme"] == "dark"
    assert raw_entry(redis_client, key_prefix, user) is not None


def test_unreadable_entry_is_replaced_not_served(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        snapshots.get_settings(user)
        # What another release might have written under the same key.
        redis_client.set(key_prefix + keys.settings_key(user), '99|{"format": 2}')
        assert snapshots.get_settings(user).values["theme"] == "system"
        assert snapshots.get_settings(user).values["theme"] == "system"
    assert (raw_entry(redis_client, key_prefix, user) or (0, {}))[0] == 1


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": None}])
def test_in_process_cache_without_redis(app: Flask, user: int) -> None:
    with app.app_context():
        assert app.config["CACHE_TYPE"] == "SimpleCache"
        assert cache.health()["backend"] == "in-process"
        assert snapshots.get_settings(user).values["theme"] == "system"
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == "system"
        assert statements == []
        service.update_settings(user, {"theme": "dark"})
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == "dark"
        assert statements == []


# --- zero SQL on the hot path, and account changes despite it -------------------------------


@pytest.mark.parametrize("path", ["/api/user/settings", "/settings", "/dashboard"])
def test_warm_reads_issue_no_sql(app: Flask, signed_in: FlaskClient, path: str) -> None:
    assert signed_in.get(path).status_code == 200
    with count_sql(app) as statements:
        for _ in range(3):
            response = signed_in.get(path)
            assert response.status_code == 200
    assert statements == [], statements


def test_cold_read_loads_the_user_with_one_query(
    app: Flask, signed_in: FlaskClient, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    signed_in.get("/api/user/settings")
    redis_client.delete(key_prefix + keys.settings_key(user))
    with count_sql(app) as statements:
        assert signed_in.get("/api/user/settings").status_code == 200
    assert len(statements) == 1, statements


def test_deactivation_signs_out_on_the_next_request(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    assert signed_in.get("/api/user/settings").status_code == 200
    with app.app_context():
        account.update_account(user, active=False)
    assert signed_in.get("/api/user/settings").status_code == 401
    response = signed_in.get("/settings")
    assert response.status_code in {302, 303}
    assert "/login" in response.headers["Location"]


def test_password_change_signs_out_on_the_next_request(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    from app.auth import service as auth_service

    assert signed_in.get("/api/user/settings").status_code == 200
    with app.app_context():
        auth_service.change_password(user, "a brand new passphrase")
    assert signed_in.get("/api/user/settings").status_code == 401


def test_sign_out_ends_every_session_of_the_user(
    app: Flask, signed_in: FlaskClient, auth: AuthActions
) -> None:
    other_device = sign_in(app)
    assert other_device.get("/api/user/settings").status_code == 200
    auth.logout()
    assert other_device.get("/api/user/settings").status_code == 401


# --- read-your-writes across instances -------------------------------------------------------


def test_read_your_writes_across_two_app_instances(
    app: Flask, make_app: Callable[..., Flask], user: int
) -> None:
    other = make_app()
    instances = [(app, sign_in(app)), (other, sign_in(other))]
    themes = itertools.cycle(["dark", "light", "system"])
    for i in range(60):
        writer, _ = instances[i % 2]
        theme = next(themes)
        write_theme(writer, user, theme)
        # Read on the other instance first, then the writer's, both with warm caches.
        for _, client in (instances[(i + 1) % 2], instances[i % 2]):
            assert theme_via_api(client) == theme, f"iteration {i}"


def test_concurrent_writers_leave_the_newest_entry(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    other = make_app()
    keys = ["theme", "locale", "timezone", "notifications.digest"]
    values = {"theme": "dark", "locale": "de", "timezone": "Europe/Berlin"}
    values["notifications.digest"] = "daily"
    errors: list[BaseException] = []

    def write(instance: Flask, key: str) -> None:
        try:
            with instance.app_context():
                service.update_settings(user, {key: values[key]})
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(app if i % 2 else other, key))
        for i, key in enumerate(keys)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    version, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
    with app.app_context():
        row = snapshots.load_snapshot(user)
    assert row is not None
    assert version == row.version
    assert snapshot["choices"] == values == row.choices


# --- outages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": CLOSED_PORT_URL}])
def test_refused_connection_serves_everything_from_the_database(
    app: Flask, client: FlaskClient, auth: AuthActions, user: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started = time.perf_counter()
    # Sign-in works although the throttles' storage is the same dead Redis.
    assert auth.login().status_code == 303
    print(f"sign-in with Redis refusing: {(time.perf_counter() - started) * 1000:.1f} ms")
    timings = []
    for i in range(20):
        path = ["/api/user/settings", "/settings", "/dashboard"][i % 3]
        began = time.perf_counter()
        assert client.get(path).status_code == 200
        timings.append(time.perf_counter() - began)
    print(f"20 requests with Redis refusing: {sum(timings) * 1000:.1f} ms in all")
    assert sum(timings) < 2
    write_theme(app, user, "dark")
    assert theme_via_api(client) == "dark"
    assert len(cache_warnings(caplog)) == 1
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    assert health["cache"]["status"] == "degraded"
    assert health["cache"]["pending_invalidations"] >= 1


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": CLOSED_PORT_URL}])
def test_failed_sign_ins_are_still_limited_when_redis_is_down(
    client: FlaskClient, auth: AuthActions, user: int
) -> None:
    statuses = [auth.login(password="wrong password").status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]


def test_killed_redis_degrades_then_recovers(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    private = make_app(REDIS_URL=redis_server.url, CACHE_RETRY_AFTER=0.3)
    client = sign_in(private)
    assert theme_via_api(client) == "system"
    assert client.get("/healthz").get_json()["cache"]["status"] == "ok"

    redis_server.kill()
    timings = []
    for i in range(20):
        path = ["/api/user/settings", "/settings", "/dashboard"][i % 3]
        began = time.perf_counter()
        assert client.get(path).status_code == 200
        timings.append(time.perf_counter() - began)
        if i == 10:
            write_theme(private, user, "dark")
    print(f"20 requests with Redis killed: {sum(timings) * 1000:.1f} ms in all")
    assert sum(timings) < 2
    assert theme_via_api(client) == "dark"
    health = client.get("/healthz").get_json()
    assert (health["status"], health["cache"]["status"]) == ("degraded", "degraded")
    assert pending_rows(private) >= 1

    redis_server.start()
    time.sleep(0.4)
    assert theme_via_api(client) == "dark"
    health = client.get("/healthz").get_json()
    assert (health["status"], health["cache"]["status"]) == ("ok", "ok")
    assert health["cache"]["pending_invalidations"] == 0
    assert len(cache_warnings(caplog)) == 1
    assert any("trusted again" in r.getMessage() for r in caplog.records)


def test_hanging_redis_costs_one_timeout_per_retry_period(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    private = make_app(REDIS_URL=redis_server.url, CACHE_RETRY_AFTER=0.5)
    client = sign_in(private)
    assert theme_via_api(client) == "system"

    redis_server.pause()
    try:
        timings = []
        for i in range(20):
            path = ["/api/user/settings", "/settings", "/dashboard"][i % 3]
            began = time.perf_counter()
            assert client.get(path).status_code == 200
            timings.append(time.perf_counter() - began)
        print(
            "20 requests with Redis hanging: "
            + ", ".join(f"{t * 1000:.1f}" for t in timings)
            + f" ms; {sum(timings) * 1000:.1f} ms in all"
        )
        assert sum(timings) < 2
        assert len(cache_warnings(caplog)) == 1
        health = client.get("/healthz").get_json()
        assert health["cache"]["status"] == "degraded"
        # After the retry period one request probes, fails in one timeout, and the breaker
        # opens again; still one warning for the whole outage.
        time.sleep(0.6)
        began = time.perf_counter()
        assert client.get("/api/user/settings").status_code == 200
        print(f"probe while hanging: {(time.perf_counter() - began) * 1000:.1f} ms")
        assert len(cache_warnings(caplog)) == 1
    finally:
        redis_server.resume()
    time.sleep(0.6)
    assert theme_via_api(client) == "system"
    assert client.get("/healthz").get_json()["cache"]["status"] == "ok"


def test_breaker_lets_one_probe_through_at_a_time() -> None:
    state = breaker.Breaker(retry_after=0.05)
    assert state.acquire()
    state.trip(ConnectionError("down"))
    assert not state.acquire()
    assert not state.available()
    time.sleep(0.06)
    assert state.available()
    assert state.acquire()  # the probe
    assert not state.acquire()  # everyone else waits for it
    state.succeeded(time.monotonic())
    assert state.acquire() and state.acquire()


def test_an_answer_from_before_a_failure_does_not_close_the_breaker() -> None:
    state = breaker.Breaker(retry_after=5)
    began = time.monotonic()
    state.trip(ConnectionError("down"))
    # An operation that started before the failure and succeeded late says nothing of now.
    state.succeeded(began)
    assert not state.available()


# --- no old value after a write, whatever Redis did ------------------------------------------


def api_write(client: FlaskClient, document: dict[str, Any]) -> float:
    """PATCH the settings through the API as the dashboard does; how long it took."""
    token = csrf_token(client, "/settings")
    began = time.perf_counter()
    response = client.patch("/api/user/settings", json=document, headers={"X-CSRFToken": token})
    elapsed = time.perf_counter() - began
    assert response.status_code == 200, response.get_data(as_text=True)
    return elapsed


def api_settings(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/user/settings")
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


@pytest.mark.parametrize("mode", ["refused", "black-holed"])
def test_no_worker_on_any_host_reads_an_old_value_after_a_write(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_server: RedisServer,
    proxy: Proxy,
    mode: str,
) -> None:
    """Two hosts of two workers each; host A loses Redis, host B never notices anything."""
    host_a = [make_app(REDIS_URL=proxy.url, CACHE_RETRY_AFTER=0.3) for _ in range(2)]
    host_b = [make_app(REDIS_URL=redis_server.url) for _ in range(2)]
    workers = [(instance, sign_in(instance)) for instance in host_a + host_b]
    for _, client in workers:
        assert api_settings(client)["theme"] == "system"
    expected = {"theme": "system", "timezone": "UTC"}

    def every_worker_reads_the_last_write() -> None:
        for index, (_, client) in enumerate(workers):
            body = api_settings(client)
            seen = {"theme": body["theme"], "timezone": body["timezone"]}
            assert seen == expected, f"worker {index} read {seen}, expected {expected}"

    proxy.fail(mode)
    writes = [
        (workers[0][1], {"theme": "dark"}),
        (workers[2][1], {"timezone": "Asia/Tokyo"}),
        (workers[1][1], {"theme": "light"}),
        (workers[3][1], {"timezone": "Europe/Berlin"}),
        (workers[0][1], {"timezone": "America/Lima", "theme": "dark"}),
    ]
    durations = []
    for writer, document in writes:
        durations.append(api_write(writer, document))
        expected.update(document)
        every_worker_reads_the_last_write()
    print(f"writes with Redis {mode} for host A: " + ", ".join(f"{d:.2f}" for d in durations))
    # A writer that cannot reach Redis waits out every marker set before its commit
    # (docs/caching.md). How long the whole write takes on a loaded machine is a number for
    # `make bench-faults` to report, not for a test to assert.
    host_a_clients = [client for _, client in workers[:2]]
    waits = [
        d for (writer, _), d in zip(writes, durations, strict=True) if writer in host_a_clients
    ]
    assert min(waits) >= host_a[0].config["CACHE_TRUST_TTL"] + cache.WRITE_MARGIN
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        every_worker_reads_the_last_write()

    proxy.restore()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        every_worker_reads_the_last_write()
    api_write(workers[1][1], {"theme": "system"})
    expected["theme"] = "system"
    every_worker_reads_the_last_write()
    assert pending_rows(app) == 0


def test_writer_killed_between_commit_and_cache_refresh_leaves_no_old_value(
    app: Flask, make_app: Callable[..., Flask], user: int, key_prefix: str
) -> None:
    readers = [sign_in(make_app()) for _ in range(2)]
    for client in readers:
        assert api_settings(client)["theme"] == "system"
    script = textwrap.dedent(
        f"""
        import os
        from app import create_app
        from app.preferences import service
        from app.preferences.cache import entries as cache
        from tests.conftest import make_config

        def die(self, payload):
            os._exit(17)

        cache.PendingWrite.committed = die
        app = create_app(make_config({app.config["SQLALCHEMY_DATABASE_URI"]!r}, {key_prefix!r}))
        with app.app_context():
            service.update_settings({user}, {{"theme": "dark"}})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, timeout=60
    )
    assert result.returncode == 17
    with app.app_context():
        assert snapshots.load_snapshot(user).choices["theme"] == "dark"  # type: ignore[union-attr]
    for client in readers:
        assert api_settings(client)["theme"] == "dark"


def test_warm_reads_issue_no_sql_in_any_request_for_fifteen_seconds(
    app: Flask, signed_in: FlaskClient
) -> None:
    """Housekeeping renews the marker many times meanwhile, from its own thread."""
    etag = signed_in.get("/api/user/settings").headers["ETag"]
    paths: list[tuple[str, dict[str, str]]] = [
        ("/api/user/settings", {}),
        ("/api/user/settings", {"If-None-Match": etag}),
        ("/settings", {}),
        ("/settings/last-saved", {"HX-Request": "true"}),
        ("/dashboard", {}),
        ("/api/user/settings/schema", {}),
        ("/api/openapi.json", {}),
    ]
    for path, headers in paths:
        assert signed_in.get(path, headers=headers).status_code in {200, 304}
    requests = 0
    with count_sql(app) as statements:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for path, headers in paths:
                assert signed_in.get(path, headers=headers).status_code in {200, 304}
                requests += 1
    print(f"{requests} warm requests in 15 s, {len(statements)} SQL statements")
    assert statements == []


def test_housekeeping_renews_the_marker_outside_requests(
    app: Flask, signed_in: FlaskClient, redis_client: redis.Redis, key_prefix: str
) -> None:
    marker = key_prefix + keys.TRUSTED_KEY
    ttl_ms = app.config["CACHE_TRUST_TTL"] * 1000
    assert signed_in.get("/api/user/settings").status_code == 200
    # No request for several lifetimes of the marker: it stays alive all the same.
    for _ in range(10):
        time.sleep(app.config["CACHE_TRUST_TTL"] / 2)
        assert 0 < redis_client.pttl(marker) <= ttl_ms


def test_the_processes_renew_the_marker_in_turn_not_all_at_once(
    app: Flask, make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    """Five workers keep one marker alive with about one reconcile per renewal period.

    Each reconcile reads Redis's clock twice (its start, and the renewal's "only extends"
    check), so Redis's count of ``TIME`` calls counts them. With a fixed check period the
    threads stayed in step, all found the marker due together and all renewed it.
    """
    workers = [app, *(make_app() for _ in range(4))]
    for worker in workers:
        with worker.app_context():
            cache.current()  # starts its housekeeping, as a first request does
    ttl = app.config["CACHE_TRUST_TTL"]
    time.sleep(ttl)

    def clock_reads() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_time", {}).get("calls", 0))

    before, seconds = clock_reads(), 10 * ttl
    time.sleep(seconds)
    reconciles = (clock_reads() - before) / 2
    # One is due every 40 % of the marker's life; racing wake-ups add a few.
    periods = seconds / (0.4 * ttl)
    print(f"{reconciles:.0f} reconciles by {len(workers)} processes in {periods:.0f} periods")
    assert periods / 2 <= reconciles <= periods * 1.6


def test_an_entry_without_the_marker_is_not_trusted(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        cache.shutdown(app)
        assert snapshots.get_settings(user).values["theme"] == "system"
        change_row_behind_the_cache(app, user, "dark")
        redis_client.delete(key_prefix + keys.TRUSTED_KEY)
        # The row changed behind the cache and nothing vouches for the entry: ask the table.
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == "dark"
        assert len(statements) == 1


def test_tombstones_keep_late_readers_from_putting_old_entries_back(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        old = snapshots.get_snapshot(user)
        assert old is not None
        db.session.add(PendingInvalidation(user_id=user, version=old.version + 1))
        db.session.execute(update(User).where(User.id == user).values(version=old.version + 1))
        db.session.commit()
        reconcile(app)
        tombstone = redis_client.get(key_prefix + keys.settings_key(user))
        assert tombstone is not None and tombstone.startswith(f"{old.version + 1}|~".encode())
        # Kept without a lifetime, so no volatile-* eviction policy drops it.
        assert redis_client.ttl(key_prefix + keys.settings_key(user)) == -1
        # A reader that loaded the row before the write stores its copy late: refused.
        cache.current().backend.store(user, old.version, old.to_json())
        assert redis_client.get(key_prefix + keys.settings_key(user)) == tombstone
        # The reader that loads the new version may replace the tombstone.
        assert snapshots.get_settings(user).version == old.version + 1
        assert (raw_entry(redis_client, key_prefix, user) or (0, {}))[0] == old.version + 1


def test_pending_rows_are_applied_exactly(
    app: Flask, make_user: Callable[..., int], redis_client: redis.Redis, key_prefix: str
) -> None:
    users = [make_user() for _ in range(3)]
    with app.app_context():
        for user_id in users:
            snapshots.get_settings(user_id)
        # A row from before the version column, and two that carry the written version.
        db.session.add(PendingInvalidation(user_id=users[0]))
        db.session.add_all(PendingInvalidation(user_id=u, version=5) for u in users[1:])
        db.session.commit()
        assert reconcile(app) == 3
        assert pending_rows(app) == 0
        assert raw_entry(redis_client, key_prefix, users[0]) is None
        for user_id in users[1:]:
            entry = redis_client.get(key_prefix + keys.settings_key(user_id))
            assert entry is not None and entry.startswith(b"5|~")
        assert redis_client.pttl(key_prefix + keys.TRUSTED_KEY) > 0
        # A tombstone reads as a miss: the settings come from the table.
        assert snapshots.get_settings(users[1]).values["theme"] == "system"


# --- Sentinel and Cluster, reached by configuration ------------------------------------------


def test_backend_is_derived_from_the_environment_variables() -> None:
    from app.config import build_config

    base = {"SECRET_KEY": "x", "REDIS_URL": None}
    sentinel = build_config({**base, "REDIS_SENTINELS": [("s1", 26379), ("s2", 26379)]})
    assert sentinel["CACHE_TYPE"] == "RedisSentinelCache"
    assert sentinel["CACHE_REDIS_SENTINEL_MASTER"] == "mymaster"
    assert sentinel["CACHE_OPTIONS"]["sentinel_socket_timeout"] <= 0.1
    assert sentinel["RATELIMIT_STORAGE_URI"] == "redis+sentinel://s1:26379,s2:26379/mymaster"
    cluster = build_config({**base, "REDIS_CLUSTER": "n1:7000,n2:7001"})
    assert cluster["CACHE_TYPE"] == "RedisClusterCache"
    assert cluster["CACHE_REDIS_CLUSTER"] == "n1:7000,n2:7001"
    assert cluster["CACHE_OPTIONS"]["retry"].get_retries() == 0
    assert cluster["RATELIMIT_STORAGE_URI"] == "redis+cluster://n1:7000,n2:7001"
    explicit = build_config({**base, "REDIS_URL": "redis://c:6379/0", "CACHE_TYPE": "NullCache"})
    assert explicit["CACHE_TYPE"] == "NullCache"


def exercise_backend(app: Flask, user: int, backend: str) -> None:
    """Reads fill the entry, a warm read needs no SQL, a write refreshes, health is ok."""
    with app.app_context():
        assert isinstance(cache.current().backend, RedisBackend)
        assert snapshots.get_settings(user).values["theme"] == "system"
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == "system"
        assert statements == []
        # The write counted in its budget with its tombstone (a cluster: beside it).
        with budget.charged_to(user, "1 per hour"):
            service.update_settings(user, {"theme": "dark"})
        with count_sql(app) as statements:
            assert snapshots.get_settings(user).values["theme"] == "dark"
        assert statements == []
        with budget.charged_to(user, "1 per hour"), pytest.raises(budget.Exhausted):
            service.update_settings(user, {"theme": "light"})
        assert snapshots.get_settings(user).values["theme"] == "dark"
        health = cache.health()
    assert (health["backend"], health["status"]) == (backend, "ok")
    client = sign_in(app)
    assert theme_via_api(client) == "dark"


def test_sentinel_backend(
    app: Flask, make_app: Callable[..., Flask], user: int, tmp_path: Path
) -> None:
    master = RedisServer(tmp_path)
    sentinel = RedisServer(tmp_path)
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
    try:
        master.start()
        sentinel.start("--sentinel", config_file=conf)
        other = make_app(
            REDIS_URL=None,
            REDIS_SENTINELS=[("127.0.0.1", sentinel.port)],
            REDIS_SENTINEL_MASTER="mymaster",
        )
        assert other.config["CACHE_TYPE"] == "RedisSentinelCache"
        exercise_backend(other, user, "redis-sentinel")
        with contextlib.closing(master.client()) as client:
            assert client.get(other.config["CACHE_KEY_PREFIX"] + keys.settings_key(user))
    finally:
        sentinel.kill()
        master.kill()


def test_cluster_backend(
    app: Flask, make_app: Callable[..., Flask], user: int, tmp_path: Path
) -> None:
    node = RedisServer(tmp_path)
    try:
        node.start("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{node.port}.conf")
        with contextlib.closing(node.client()) as client:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, "the one-node cluster did not come up"
                time.sleep(0.05)
        other = make_app(REDIS_URL=None, REDIS_CLUSTER=f"127.0.0.1:{node.port}")
        assert other.config["CACHE_TYPE"] == "RedisClusterCache"
        exercise_backend(other, user, "redis-cluster")
    finally:
        node.kill()
