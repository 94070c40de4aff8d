"""A PostgreSQL that stops answering costs each request a bounded time, and errors are reported.

The app reaches the test's PostgreSQL through a TCP proxy that the test black-holes: the
server is still there and connections stay open, but nothing comes back, as with a hung
server or a network that drops packets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, got_request_exception
from flask.testing import FlaskClient

from app import create_app
from app.preferences.cache import entries as cache
from tests import conftest
from tests.conftest import AuthActions, csrf_token, fresh_tables, make_config
from tests.support import Proxy


@pytest.fixture
def pg_proxy() -> Iterator[Proxy]:
    """A path to the test PostgreSQL that the test can black-hole."""
    url = sa.make_url(conftest.run_database_url())
    proxy = Proxy(url.port or 5432, url.host or "127.0.0.1")
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_app(pg_proxy: Proxy, key_prefix: str) -> Iterator[Flask]:
    """An app whose database connections all go through ``pg_proxy``."""
    url = sa.make_url(conftest.run_database_url()).set(host="127.0.0.1", port=pg_proxy.port)
    # The production bounds (app/config.py), which the test measures against.
    app = create_app(
        make_config(
            url.render_as_string(hide_password=False),
            key_prefix,
            DATABASE_TIMEOUT=1.0,
            DATABASE_LOCK_TIMEOUT=0.5,
        )
    )
    with fresh_tables(app):
        yield app
        pg_proxy.restore()


def timed(call: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def assert_writes_again(client: FlaskClient, token: str) -> None:
    """Once the database is back, a write goes through within seconds, and reads show it."""
    deadline = time.monotonic() + 5
    while True:
        response = client.patch(
            "/api/user/settings", json={"theme": "dark"}, headers={"X-CSRFToken": token}
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200
    assert client.get("/api/user/settings").get_json()["theme"] == "dark"


def test_black_holed_database_costs_a_bounded_time(proxied_app: Flask, pg_proxy: Proxy) -> None:
    app = proxied_app
    with app.app_context():
        from app.auth import service as auth_service

        user_id = auth_service.create_user("user1@example.com", conftest.PASSWORD).id
    client = app.test_client()
    assert AuthActions(client).login().status_code == 303
    token = csrf_token(client, "/settings")
    assert client.get("/api/user/settings").status_code == 200
    reported: list[BaseException] = []

    def subscriber(_sender: Flask, exception: BaseException, **_extra: Any) -> None:
        reported.append(exception)

    pg_proxy.black_hole()
    with got_request_exception.connected_to(subscriber, app):
        # Warm reads keep answering from the cache, page and API alike.
        deadline = time.monotonic() + 2.5
        reads = []
        while time.monotonic() < deadline:
            for path in ("/api/user/settings", "/settings", "/dashboard"):
                response, elapsed = timed(lambda path=path: client.get(path))
                assert response.status_code == 200, (path, response.get_data(as_text=True))
                reads.append(elapsed)
        print(f"{len(reads)} warm reads, slowest {max(reads):.2f} s")
        assert max(reads) < 1.5

        # A write fails with a problem document, within the bound.
        response, elapsed = timed(
            lambda: client.patch(
                "/api/user/settings", json={"theme": "dark"}, headers={"X-CSRFToken": token}
            )
        )
        print(f"write with the database black-holed: {response.status_code} in {elapsed:.2f} s")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"]
        assert elapsed < 2

        # A cold read fails once, within the bound: the error page does not ask again.
        with app.app_context():
            cache.invalidate(user_id)
        response, elapsed = timed(lambda: client.get("/settings"))
        print(f"cold page with the database black-holed: {elapsed:.2f} s")
        assert response.status_code == 503
        assert elapsed < 2

        response, elapsed = timed(lambda: client.get("/healthz"))
        assert response.status_code == 503
        assert response.get_json()["database"]["status"] == "down"
        assert elapsed < 2
    assert reported, "error-reporting tools heard of nothing"
    assert all(isinstance(exc, sa.exc.DBAPIError) for exc in reported)

    pg_proxy.restore()
    assert_writes_again(client, token)


def test_unexpected_errors_reach_error_reporting_tools(app: Flask, user: int) -> None:
    def boom() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/boom", "boom", boom)
    client: FlaskClient = app.test_client()
    assert AuthActions(client).login().status_code == 303
    reported: list[BaseException] = []

    def subscriber(_sender: Flask, exception: BaseException, **_extra: Any) -> None:
        reported.append(exception)

    with got_request_exception.connected_to(subscriber, app):
        response = client.get("/boom")
    assert response.status_code == 500
    assert "boom" not in response.get_data(as_text=True)
    assert len(reported) == 1 and str(reported[0]) == "boom"


def test_write_to_a_down_database_leaves_warm_reads_served(
    proxied_app: Flask, pg_proxy: Proxy
) -> None:
    """A write that could not reach the database never wrote: the cached entry stays.

    The fault drill found this: a write that marked the cache before finding the database
    down sent that user's reads to the database too, and they failed for the whole outage.
    """
    app = proxied_app
    with app.app_context():
        from app.auth import service as auth_service

        auth_service.create_user("user1@example.com", conftest.PASSWORD)
    client = app.test_client()
    assert AuthActions(client).login().status_code == 303
    token = csrf_token(client, "/settings")
    assert (
        client.patch(
            "/api/user/settings", json={"theme": "light"}, headers={"X-CSRFToken": token}
        ).status_code
        == 200
    )

    pg_proxy.cut()
    for _ in range(3):
        response = client.patch(
            "/api/user/settings", json={"theme": "dark"}, headers={"X-CSRFToken": token}
        )
        assert response.status_code == 503, response.get_data(as_text=True)
        for path in ("/api/user/settings", "/settings"):
            read = client.get(path)
            assert read.status_code == 200, (path, read.get_data(as_text=True))
        assert client.get("/api/user/settings").get_json()["theme"] == "light"

    pg_proxy.restore()
    assert_writes_again(client, token)
