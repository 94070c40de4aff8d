"""The settings cache against a real Redis: hot path, invalidation, two instances, outages."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
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

from app.extensions import db, limiter
from app.models import PendingInvalidation, User
from app.preferences import cache, service
from tests.conftest import PASSWORD, AuthActions, build_app, count_sql, make_config

REDIS_SERVER = "/usr/bin/redis-server"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
CACHE_LOGGER = "app.preferences.cache"


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now, with its cluster bus port free too.

    Redis Cluster listens on the port plus 10000 as well, so a port above 55535 makes a
    cluster node exit at start.
    """
    while True:
        with socket.socket() as probe, socket.socket() as bus:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port + 10000 > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


class RedisServer:
    """A private ``redis-server`` the test may stop, pause and restart; never the shared one."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self, *extra: str, config_file: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *([str(config_file)] if config_file else []),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory), *extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with contextlib.closing(self.client()) as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def pause(self) -> None:
        assert self.process
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running private Redis, killed at teardown whatever the test did to it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


class Proxy:
    """A TCP proxy in front of Redis that the test can cut, as a network partition would.

    Unlike pausing the server, a cut loses what the app sends, so a write that fails
    really leaves the old entry in Redis.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut_off = threading.Event()
        self.closing = threading.Event()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                downstream.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.sockets |= {downstream, upstream}
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()

    def _pump(self, one: socket.socket, other: socket.socket) -> None:
        peers = {one: other, other: one}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                if self.cut_off.is_set() or self.closing.is_set():
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones; what is in flight is lost."""
        self.cut_off.set()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def restore(self) -> None:
        self.cut_off.clear()

    def close(self) -> None:
        self.closing.set()
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)


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
        other = build_app(
            make_config(app.config["SQLALCHEMY_DATABASE_URI"], key_prefix, **overrides)
        )
        apps.append(other)
        return other

    yield make
    for other in apps:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def limiter_recovers() -> Iterator[None]:
    """Flask-Limiter remembers a dead storage process-wide; later tests get a live one."""
    yield
    limiter._storage_dead = False


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
    value = client.get(prefix + cache.settings_key(user_id))
    if value is None:
        return None
    version, _, payload = value.decode().partition("|")
    return int(version), json.loads(payload)


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
        assert service.get_settings(user).values["theme"] == "system"
    version, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
    assert snapshot["id"] == user
    assert snapshot["version"] == version
    assert snapshot["email"] == "user1@example.com"
    assert snapshot["active"] is True
    assert redis_client.ttl(key_prefix + cache.settings_key(user)) > 290

    # The warm read does not look at the row: a change made behind the cache stays unseen...
    change_row_behind_the_cache(app, user, "dark")
    with app.app_context():
        assert service.get_settings(user).values["theme"] == "system"
        # ...until the entry is invalidated.
        cache.invalidate(user)
        assert service.get_settings(user).values["theme"] == "dark"


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
        service.get_settings(user)
        before, _ = raw_entry(redis_client, key_prefix, user) or (0, {})
        write(user)
        after, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
        assert after == before + 1
        assert snapshot["choices"].get("theme", "system") == expected
        with count_sql(app) as statements:
            assert service.get_settings(user).values["theme"] == expected
        assert statements == []


def test_an_older_version_never_replaces_a_newer_entry(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        old = service.get_snapshot(user)
        assert old is not None
        service.update_settings(user, {"theme": "dark"})
        # A reader that loaded the row before the write stores its copy late.
        cache.store(user, old.version, old.to_json())
        version, snapshot = raw_entry(redis_client, key_prefix, user) or (0, {})
        assert version == old.version + 1
        assert snapshot["choices"]["theme"] == "dark"


@pytest.mark.parametrize("config_overrides", [{"SETTINGS_CACHE_TTL": 1}])
def test_entry_expires_after_its_ttl(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        service.get_settings(user)
    assert 0 < redis_client.ttl(key_prefix + cache.settings_key(user)) <= 1
    change_row_behind_the_cache(app, user, "dark")
    time.sleep(1.2)
    assert raw_entry(redis_client, key_prefix, user) is None
    with app.app_context():
        assert service.get_settings(user).values["theme"] == "dark"
    assert raw_entry(redis_client, key_prefix, user) is not None


def test_unreadable_entry_is_replaced_not_served(
    app: Flask, user: int, redis_client: redis.Redis, key_prefix: str
) -> None:
    with app.app_context():
        service.get_settings(user)
        # What another release might have written under the same key.
        redis_client.set(key_prefix + cache.settings_key(user), '99|{"format": 2}')
        assert service.get_settings(user).values["theme"] == "system"
        assert service.get_settings(user).values["theme"] == "system"
    assert (raw_entry(redis_client, key_prefix, user) or (0, {}))[0] == 1


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": None}])
def test_in_process_cache_without_redis(app: Flask, user: int) -> None:
    with app.app_context():
        assert app.config["CACHE_TYPE"] == "SimpleCache"
        assert cache.health()["backend"] == "in-process"
        assert service.get_settings(user).values["theme"] == "system"
        with count_sql(app) as statements:
            assert service.get_settings(user).values["theme"] == "system"
        assert statements == []
        service.update_settings(user, {"theme": "dark"})
        with count_sql(app) as statements:
            assert service.get_settings(user).values["theme"] == "dark"
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
    redis_client.delete(key_prefix + cache.settings_key(user))
    with count_sql(app) as statements:
        assert signed_in.get("/api/user/settings").status_code == 200
    assert len(statements) == 1, statements


def test_deactivation_signs_out_on_the_next_request(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    assert signed_in.get("/api/user/settings").status_code == 200
    with app.app_context():
        service.update_account(user, active=False)
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
        row = service.load_snapshot(user)
    assert row is not None
    assert version == row.version
    assert snapshot["choices"] == values == row.choices


# --- outages ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("limiter_recovers")
@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": CLOSED_PORT_URL}])
def test_refused_connection_serves_everything_from_the_database(
    app: Flask, client: FlaskClient, auth: AuthActions, user: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started = time.perf_counter()
    # Sign-in works although the rate limiter's storage is the same dead Redis.
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


@pytest.mark.usefixtures("limiter_recovers")
@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": CLOSED_PORT_URL}])
def test_failed_sign_ins_are_still_limited_when_redis_is_down(
    client: FlaskClient, auth: AuthActions, user: int
) -> None:
    statuses = [auth.login(password="wrong password").status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]


@pytest.mark.usefixtures("limiter_recovers")
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


@pytest.mark.usefixtures("limiter_recovers")
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
    state = cache.CacheState(retry_after=0.05)
    assert state.acquire()
    state.trip(ConnectionError("down"))
    assert not state.acquire()
    assert not state.available()
    time.sleep(0.06)
    assert state.available()
    assert state.acquire()  # the probe
    assert not state.acquire()  # everyone else waits for it
    state.succeeded()
    assert state.acquire() and state.acquire()
    assert state.outage  # trusted again only after a reconcile


# --- stale entries after an outage -----------------------------------------------------------


def test_write_during_partition_never_serves_the_old_entry_afterwards(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_server: RedisServer,
    proxy: Proxy,
    key_prefix: str,
) -> None:
    trust_ttl = 1.0
    # ``writer`` reaches Redis through the proxy, ``bystander`` directly: it never sees the
    # outage, as a worker on another host would not.
    writer = make_app(REDIS_URL=proxy.url, CACHE_RETRY_AFTER=0.2, CACHE_TRUST_TTL=trust_ttl)
    bystander = make_app(REDIS_URL=redis_server.url, CACHE_TRUST_TTL=trust_ttl)
    writer_client, bystander_client = sign_in(writer), sign_in(bystander)
    assert theme_via_api(writer_client) == "system"
    assert theme_via_api(bystander_client) == "system"
    direct = redis_server.client()
    old_version, _ = raw_entry(direct, key_prefix, user) or (0, {})

    proxy.cut()
    write_theme(writer, user, "dark")
    written = time.monotonic()
    # The write could not refresh Redis: the old entry is still there, recorded as pending.
    entry = raw_entry(direct, key_prefix, user)
    assert entry is not None and entry[0] == old_version
    assert pending_rows(writer) == 1
    # The writer reads its own write at once: its breaker is open, so it asks the database.
    assert theme_via_api(writer_client) == "dark"

    # The bystander may trust the cache until the trusted marker expires, no longer.
    seen = []
    while True:
        theme = theme_via_api(bystander_client)
        seen.append(theme)
        if theme == "dark":
            break
        assert time.monotonic() - written <= trust_ttl + 0.5, seen
        time.sleep(0.05)
    print(f"bystander: {len(seen) - 1} stale reads, fresh after {time.monotonic() - written:.2f} s")
    assert pending_rows(writer) == 0

    proxy.restore()
    time.sleep(0.3)
    for client in (writer_client, bystander_client, writer_client):
        assert theme_via_api(client) == "dark"
    assert (raw_entry(direct, key_prefix, user) or (0, {}))[0] == old_version + 1
    direct.close()


def test_stale_entry_is_dropped_when_redis_comes_back(
    app: Flask,
    make_app: Callable[..., Flask],
    user: int,
    redis_server: RedisServer,
    proxy: Proxy,
    key_prefix: str,
) -> None:
    trust_ttl = 1.0
    writer = make_app(REDIS_URL=proxy.url, CACHE_RETRY_AFTER=0.2, CACHE_TRUST_TTL=trust_ttl)
    bystander = make_app(REDIS_URL=redis_server.url, CACHE_TRUST_TTL=trust_ttl)
    writer_client, bystander_client = sign_in(writer), sign_in(bystander)
    for client in (writer_client, bystander_client):
        assert theme_via_api(client) == "system"
    direct = redis_server.client()

    proxy.cut()
    write_theme(writer, user, "dark")
    write_theme(writer, user, "light")
    # The outage outlasts the trusted marker, as a real one usually does.
    time.sleep(trust_ttl + 0.2)
    proxy.restore()
    time.sleep(0.3)
    stale = raw_entry(direct, key_prefix, user)
    assert stale is not None and stale[1]["choices"] == {}
    # The first read after the outage, on either instance, returns the last write.
    assert theme_via_api(bystander_client) == "light"
    assert theme_via_api(writer_client) == "light"
    assert theme_via_api(bystander_client) == "light"
    assert pending_rows(writer) == 0
    direct.close()


def test_pending_rows_are_applied_exactly(
    app: Flask, make_user: Callable[..., int], redis_client: redis.Redis, key_prefix: str
) -> None:
    users = [make_user() for _ in range(3)]
    with app.app_context():
        for user_id in users:
            service.get_settings(user_id)
        db.session.add_all(PendingInvalidation(user_id=user_id) for user_id in users)
        db.session.commit()
        redis_client.delete(key_prefix + cache.TRUSTED_KEY)
        service.get_settings(users[0])
        assert pending_rows(app) == 0
        for user_id in users[1:]:
            assert raw_entry(redis_client, key_prefix, user_id) is None
        assert redis_client.pttl(key_prefix + cache.TRUSTED_KEY) > 0


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
        assert cache._redis() is not None
        assert service.get_settings(user).values["theme"] == "system"
        with count_sql(app) as statements:
            assert service.get_settings(user).values["theme"] == "system"
        assert statements == []
        service.update_settings(user, {"theme": "dark"})
        with count_sql(app) as statements:
            assert service.get_settings(user).values["theme"] == "dark"
        assert statements == []
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
            assert client.get(other.config["CACHE_KEY_PREFIX"] + cache.settings_key(user))
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
