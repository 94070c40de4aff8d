"""What an attacker tried, and what holds instead: limits, bad bytes, echoes, forged requests."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import AdminView, User
from app.preferences import history, validation
from app.preferences import snapshot as snapshots
from tests.conftest import PASSWORD, AuthActions, csrf_token

# Windows end on the clock; an hour-long one is not crossed while a test runs.
LIMITED = {"RATELIMIT_LOGIN": "5 per hour", "SIGNIN_FREE_FAILURES": 100}


def sign_in_from(client: FlaskClient, address: str, email: str, password: str) -> Any:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login", data=data, headers={"X-Forwarded-For": address})


def user_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(User)) or 0)


# --- sign-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_REGISTER": "3 per hour"}])
def test_sign_ups_are_limited_per_client_and_keep_the_form(app: Flask, client: FlaskClient) -> None:
    statuses = []
    for i in range(5):
        data = {
            "email": f"person{i}@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": csrf_token(client, "/register"),
        }
        response = client.post("/register", data=data)
        statuses.append(response.status_code)
    assert statuses == [303, 303, 303, 429, 429]
    assert int(response.headers["Retry-After"]) >= 1
    page = response.get_data(as_text=True)
    assert 'value="person4@example.com"' in page
    assert "Too many attempts" in page
    # Refused attempts spent no password hash and created nothing.
    assert user_count(app) == 3


# --- sign-in ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_overrides",
    [{"TRUSTED_PROXIES": 1, "SIGNIN_FREE_FAILURES": 5, "SIGNIN_MAX_DELAY": 2}],
)
def test_one_account_from_many_addresses_backs_off(app: Flask, user: int) -> None:
    statuses = []
    refused = None
    for attempt in range(40):
        client = app.test_client()
        response = sign_in_from(
            client, f"198.51.100.{attempt % 20}", "user1@example.com", "wrong password"
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response
    assert statuses[:5] == [422] * 5
    assert statuses.count(429) >= 30
    assert refused is not None
    assert int(refused.headers["Retry-After"]) in {1, 2}
    assert "user1@example.com" in refused.get_data(as_text=True)
    # The victim waits seconds, not an hour: the back-off is capped.
    time.sleep(2.1)
    assert (
        sign_in_from(app.test_client(), "203.0.113.5", "user1@example.com", PASSWORD).status_code
        == 303
    )
    # A correct password starts the account's count over.
    assert (
        sign_in_from(app.test_client(), "203.0.113.6", "user1@example.com", "nope").status_code
        == 422
    )


@pytest.mark.parametrize("config_overrides", [{"SIGNIN_FREE_FAILURES": 3}])
def test_the_last_free_attempt_says_what_comes_next(
    app: Flask, client: FlaskClient, user: int
) -> None:
    pages = [AuthActions(client).login(password="wrong").get_data(as_text=True) for _ in range(3)]
    # The third attempt is the last free one: the warning comes with the second.
    assert "will pause" not in pages[0]
    assert "will pause" in pages[1]


@pytest.mark.parametrize(
    "config_overrides", [{"TRUSTED_PROXIES": 1, "SIGNIN_FREE_FAILURES": 2, "SIGNIN_MAX_DELAY": 60}]
)
def test_an_attacker_cannot_lock_the_owner_out(app: Flask, user: int) -> None:
    owner = app.test_client()
    assert sign_in_from(owner, "203.0.113.1", "user1@example.com", PASSWORD).status_code == 303
    owner.post("/logout", data={"csrf_token": csrf_token(owner, "/settings")})
    attacker = app.test_client()
    for attempt in range(4):
        sign_in_from(attacker, f"198.51.100.{attempt}", "user1@example.com", "guess")
    # The attacker waits; the browser the owner signed in from before does not.
    assert sign_in_from(attacker, "198.51.100.9", "user1@example.com", PASSWORD).status_code == 429
    assert sign_in_from(owner, "203.0.113.1", "user1@example.com", PASSWORD).status_code == 303


def concurrently(app: Flask, count: int, attempt: Any) -> list[int]:
    """Run ``count`` sign-in attempts at the same moment, each from its own client."""
    clients = [app.test_client() for _ in range(count)]
    tokens = [csrf_token(client) for client in clients]
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        status = attempt(clients[index], tokens[index], index)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize("config_overrides", [LIMITED])
def test_concurrent_attempts_from_one_client_are_counted_atomically(app: Flask, user: int) -> None:
    def attempt(client: FlaskClient, token: str, index: int) -> int:
        data = {"email": f"guess{index}@example.com", "password": "wrong", "csrf_token": token}
        return client.post("/login", data=data).status_code

    statuses = concurrently(app, 12, attempt)
    assert sorted(statuses) == [422] * 5 + [429] * 7


@pytest.mark.parametrize("config_overrides", [{"TRUSTED_PROXIES": 1, "SIGNIN_FREE_FAILURES": 5}])
def test_concurrent_attempts_on_one_account_are_counted_atomically(app: Flask, user: int) -> None:
    def attempt(client: FlaskClient, token: str, index: int) -> int:
        data = {"email": "user1@example.com", "password": "wrong", "csrf_token": token}
        headers = {"X-Forwarded-For": f"198.51.100.{index}"}
        return client.post("/login", data=data, headers=headers).status_code

    statuses = concurrently(app, 12, attempt)
    assert sorted(statuses) == [422] * 5 + [429] * 7


# --- bad bytes are bad input, not an outage --------------------------------------------------


@pytest.fixture
def as_admin(app: Flask, client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("admin@example.com", is_admin=True)
    assert AuthActions(client).login("admin@example.com").status_code == 303
    return client


def test_nul_bytes_and_huge_numbers_are_bad_input(
    app: Flask, client: FlaskClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    make_user("admin@example.com", is_admin=True)
    data = {
        "email": "admin\x00@example.com",
        "password": PASSWORD,
        "csrf_token": csrf_token(client),
    }
    response = client.post("/login", data=data)
    assert response.status_code == 422
    assert "printable" in response.get_data(as_text=True)
    assert AuthActions(client).login("admin@example.com").status_code == 303
    assert client.get("/admin/users?q=" + quote("a\x00b")).status_code == 400
    assert client.get("/admin/users/99999999999999").status_code == 404
    user_id = make_user("someone@example.com")
    assert client.get(f"/admin/users/{user_id}?before=999999999999999999").status_code == 200
    assert client.get("/admin/users?page=99999999999999").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("target", ["/dashboard\r\nX-Evil: 1", "/\nhttps://evil.example", "/ x"])
def test_control_characters_in_next_are_not_followed(
    client: FlaskClient, user: int, target: str
) -> None:
    data = {"email": "user1@example.com", "password": PASSWORD, "csrf_token": csrf_token(client)}
    response = client.post(f"/login?next={quote(target)}", data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings"


# --- no amplified echoes, no unbounded writes ------------------------------------------------


def test_error_reports_are_capped(app: Flask, signed_in: FlaskClient, user: int) -> None:
    token = csrf_token(signed_in, "/settings")
    # Some 50 KB: under the import's 64 KB, thousands of keys that do not exist.
    junk = {f"{i:x}": 0 for i in range(6000)}
    document = {"format": "user-settings", "version": 1, "settings": junk}
    body = json.dumps(document).encode()
    response = signed_in.post(
        "/api/user/settings/import",
        data=body,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 422
    assert len(response.get_data()) < 8 * 1024
    errors = response.get_json()["errors"]
    assert len(errors) == validation.MAX_REPORTED_ERRORS + 1
    assert "5980 more problems" in " ".join(errors[""])
    page = signed_in.post(
        "/settings/import",
        data={"csrf_token": token, "file": (io.BytesIO(body), "big.json", "application/json")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 422, page.get_data(as_text=True)[-3000:]
    # The page with the problem is the page plus a few lines, not plus a copy of the file.
    assert len(page.get_data()) < len(signed_in.get("/settings").get_data()) + 8 * 1024
    reset = signed_in.post(
        "/api/user/settings/reset",
        json={"keys": [f"no.such.key.{i}" for i in range(600)]},
        headers={"X-CSRFToken": token},
    )
    assert reset.status_code == 422
    assert len(reset.get_data()) < 8 * 1024
    with app.app_context():
        assert snapshots.load_snapshot(user).choices == {}  # type: ignore[union-attr]


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_WRITES": "5 per 10 seconds"}])
def test_writes_are_limited_per_user(app: Flask, signed_in: FlaskClient, user: int) -> None:
    token = csrf_token(signed_in, "/settings")
    statuses = []
    for i in range(8):
        theme = ("dark", "light")[i % 2]
        response = signed_in.put(
            "/api/user/settings", json={"theme": theme}, headers={"X-CSRFToken": token}
        )
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429] * 3
    assert response.mimetype == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 11
    # The page's saves draw on the same budget.
    field = signed_in.post(
        "/settings/theme",
        data={"theme": "system"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert field.status_code == 429
    with app.app_context():
        assert len(history.history(user, limit=100)) == 5


# --- requests that name the user are never cached by others ----------------------------------


def test_personal_error_pages_are_not_stored_by_shared_caches(signed_in: FlaskClient) -> None:
    response = signed_in.get("/static/no-such-file.css")
    assert response.status_code == 404
    assert "user1@example.com" in response.get_data(as_text=True)
    assert "no-store" in response.headers["Cache-Control"]
    with signed_in.get("/static/css/app.css") as asset:
        assert asset.headers.get("Cache-Control") != "no-store"


def test_logout_deletes_the_remember_cookie(
    client: FlaskClient, auth: AuthActions, user: int
) -> None:
    auth.login(remember=True)
    response = auth.logout()
    cookies = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    assert "remember_token" in cookies
    assert cookies["remember_token"].value == ""
    assert "1970" in cookies["remember_token"]["expires"]


def test_redirects_never_name_the_host_the_client_sent(as_admin: FlaskClient) -> None:
    response = as_admin.get("/admin//users", headers={"Host": "evil.example"})
    assert response.status_code in {301, 308}
    assert response.headers["Location"] == "/admin/users"


def test_production_needs_trusted_hosts() -> None:
    with pytest.raises(RuntimeError, match="TRUSTED_HOSTS"):
        create_app({"APP_ENV": "production", "SECRET_KEY": "x", "TRUSTED_HOSTS": None})


def test_cross_site_navigation_to_a_user_page_records_nothing(
    app: Flask, as_admin: FlaskClient, make_user: Any
) -> None:
    person = make_user("person@example.com")
    page = as_admin.get(f"/admin/users/{person}", headers={"Sec-Fetch-Site": "cross-site"})
    assert page.status_code == 200
    assert "person@example.com" not in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminView)) == 0
    page = as_admin.get(f"/admin/users/{person}", headers={"Sec-Fetch-Site": "same-origin"})
    assert "person@example.com" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminView)) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Origin": "http://localhost"}, 200),
        ({"Referer": "http://localhost/settings"}, 200),
        ({}, 200),
    ],
)
def test_writes_from_another_origin_are_refused_even_with_the_token(
    app: Flask, signed_in: FlaskClient, user: int, headers: dict[str, str], status: int
) -> None:
    token = csrf_token(signed_in, "/settings")
    response = signed_in.patch(
        "/api/user/settings", json={"theme": "dark"}, headers={"X-CSRFToken": token, **headers}
    )
    assert response.status_code == status
    with app.app_context():
        theme = snapshots.get_settings(user).values["theme"]
    assert theme == ("dark" if status == 200 else "system")


# --- bodies over the limit, however they are sent --------------------------------------------


@pytest.mark.parametrize("path", ["/settings", "/login"])
def test_chunked_form_bodies_over_the_limit_are_413(signed_in: FlaskClient, path: str) -> None:
    token = csrf_token(signed_in, "/settings")
    body = f"csrf_token={token}&theme=dark&filler={'x' * 17_000}&notifications__digest=off"
    response = signed_in.post(
        path,
        input_stream=io.BytesIO(body.encode()),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_chunked_form_bodies_under_the_limit_are_read(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    token = csrf_token(signed_in, "/settings")
    body = f"csrf_token={token}&theme=dark"
    response = signed_in.post(
        "/settings/theme",
        input_stream=io.BytesIO(body.encode()),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked", "HX-Request": "true"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        assert snapshots.get_settings(user).values["theme"] == "dark"
