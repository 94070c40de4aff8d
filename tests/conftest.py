"""Fixtures: a fresh app per test on SQLite and on PostgreSQL, a real Redis, signed-in clients."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event

from app import create_app
from app.auth import service as auth_service
from app.extensions import db
from app.preferences.cache import entries as cache

#: The PostgreSQL server to test against; each pytest run gets its own database on it.
TEST_SERVER_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

#: This run's database on ``TEST_SERVER_URL``, created when a test first needs PostgreSQL and
#: dropped at the end, so runs in parallel (two developers, a developer and CI) never share
#: tables, and tests that need no service run where there is none.
_run_database_url: str | None = None


def _services_missing(problem: str) -> None:
    """Stop the run, and say what to do, when a service a test needs is not there."""
    pytest.exit(
        "The tests need a real PostgreSQL and Redis (run `make services`, or set "
        f"TEST_DATABASE_URL / TEST_REDIS_URL):\n  {problem}",
        returncode=3,
    )


def run_database_url() -> str:
    """The URL of this run's PostgreSQL database, created on first use."""
    global _run_database_url
    if _run_database_url is None:
        try:
            _run_database_url = create_database("test_run")
        except sa.exc.OperationalError as exc:
            _services_missing(f"PostgreSQL at {TEST_SERVER_URL}: {exc.orig}")
    assert _run_database_url is not None
    return _run_database_url


def _server_engine() -> sa.Engine:
    return sa.create_engine(TEST_SERVER_URL, isolation_level="AUTOCOMMIT")


def create_database(purpose: str) -> str:
    """A new, empty database on ``TEST_SERVER_URL`` named after ``purpose``; its URL."""
    name = f"{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = _server_engine()
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return sa.make_url(TEST_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database ``create_database`` made, even with connections still open."""
    name = sa.make_url(url).database
    engine = _server_engine()
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop this run's database, if a test made one."""
    if _run_database_url is not None:
        drop_database(_run_database_url)


def database_url(backend: str, tmp_path: Any) -> str:
    """Where one test's database lives on ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return run_database_url()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    """A plain client of the test Redis, for inspecting and clearing keys."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _services_missing(f"Redis at {TEST_REDIS_URL}: {exc}")
    yield client
    client.close()


def make_config(database_url: str, prefix: str, **overrides: Any) -> dict[str, Any]:
    """Configuration of a test app: real services, its own Redis key prefix."""
    config: dict[str, Any] = {
        "TESTING": True,
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        "RATELIMIT_KEY_PREFIX": prefix + "limits",
        # Tests write and sign up far faster than people; the limit tests set real values.
        "RATELIMIT_WRITES": "100000 per hour",
        "RATELIMIT_REGISTER": "100000 per hour",
        # A shared two-core machine running browsers can take seconds for one commit; the
        # tests of a hanging database set the production bounds themselves.
        "DATABASE_TIMEOUT": 10.0,
        "DATABASE_LOCK_TIMEOUT": 5.0,
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses the database runs on both backends."""
    return str(request.param)


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key prefix for one test, with its keys deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=prefix + "*", count=500))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module to change the app's configuration."""
    return {}


@contextlib.contextmanager
def count_sql(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement ``app`` sends from this thread while the block runs.

    The test client serves requests on the calling thread; the cache's housekeeping runs
    its own thread, outside every request, and is not counted.
    """
    statements: list[str] = []
    caller = threading.get_ident()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == caller:
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextlib.contextmanager
def fresh_tables(app: Flask) -> Iterator[Flask]:
    """Empty tables for ``app`` while the block runs, dropped afterwards."""
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    cache.shutdown(app)
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def app(
    backend: str, tmp_path: Any, key_prefix: str, config_overrides: dict[str, Any]
) -> Iterator[Flask]:
    """A fresh app with empty tables on the chosen backend."""
    url = database_url(backend, tmp_path)
    with fresh_tables(create_app(make_config(url, key_prefix, **config_overrides))) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner of ``app``."""
    return app.test_cli_runner()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., Any]:
    """Create users with overridable fields; returns the user's id."""
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = PASSWORD, **fields: Any) -> int:
        with app.app_context():
            user = auth_service.create_user(email or f"user{next(counter)}@example.com", password)
            for name, value in fields.items():
                setattr(user, name, value)
            db.session.commit()
            return int(user.id)

    return make


@pytest.fixture
def user(make_user: Callable[..., int]) -> int:
    """The id of a plain user, ``user1@example.com``."""
    return make_user("user1@example.com")


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token a page hands to its forms and scripts."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_META.search(html) or CSRF_INPUT.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class AuthActions:
    """Sign in and out through the real pages, as a person would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(
        self, email: str = "user1@example.com", password: str = PASSWORD, remember: bool = False
    ) -> Any:
        data = {"email": email, "password": password, "csrf_token": csrf_token(self.client)}
        if remember:
            data["remember"] = "y"
        return self.client.post("/login", data=data)

    def logout(self) -> Any:
        token = csrf_token(self.client, "/settings")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Sign-in helper bound to ``client``."""
    return AuthActions(client)


@pytest.fixture
def signed_in(client: FlaskClient, auth: AuthActions, user: int) -> FlaskClient:
    """A client signed in as ``user``."""
    response = auth.login()
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
