"""Behind ``TRUSTED_PROXIES`` reverse proxies: the client's address, scheme and host.

Every request of the test client comes from one socket address, as every request does
behind a proxy; only ``X-Forwarded-For`` tells the clients apart.
"""

from __future__ import annotations

import pytest
from flask import Flask, request, url_for
from flask.testing import FlaskClient

from tests.conftest import AuthActions, csrf_token


def failed_sign_in(client: FlaskClient, forwarded_for: str, attempt: int) -> int:
    """One wrong password from ``forwarded_for``, each for another account."""
    headers = {"X-Forwarded-For": forwarded_for}
    data = {
        "email": f"nobody{attempt}@example.com",
        "password": "wrong password",
        "csrf_token": csrf_token(client),
    }
    return client.post("/login", data=data, headers=headers).status_code


@pytest.mark.parametrize(
    "config_overrides", [{"TRUSTED_PROXIES": 1, "RATELIMIT_LOGIN": "3 per hour"}]
)
def test_clients_behind_one_proxy_have_their_own_sign_in_limits(app: Flask) -> None:
    one, other = app.test_client(), app.test_client()
    statuses = [failed_sign_in(one, "203.0.113.7", i) for i in range(4)]
    assert statuses == [422, 422, 422, 429]
    # Another client of the same proxy is not locked out by the first one's attempts.
    assert [failed_sign_in(other, "198.51.100.9", i) for i in range(10, 13)] == [422] * 3


@pytest.mark.parametrize(
    "config_overrides", [{"TRUSTED_PROXIES": 0, "RATELIMIT_LOGIN": "3 per hour"}]
)
def test_without_trusted_proxies_a_forged_address_does_not_escape_the_limit(
    app: Flask,
) -> None:
    client = app.test_client()
    statuses = [failed_sign_in(client, f"203.0.113.{i}", i) for i in range(4)]
    assert statuses == [422, 422, 422, 429]


@pytest.mark.parametrize(
    ("config_overrides", "expected"),
    [
        ({"TRUSTED_PROXIES": 1}, (True, "https://settings.example.com/login")),
        ({"TRUSTED_PROXIES": 0}, (False, "http://localhost/login")),
    ],
)
def test_scheme_and_host_come_from_a_trusted_proxy_only(
    app: Flask, user: int, expected: tuple[bool, str]
) -> None:
    seen: list[tuple[bool, str]] = []

    def probe() -> str:
        seen.append((request.is_secure, url_for("auth.login", _external=True)))
        return ""

    app.add_url_rule("/probe", "probe", probe)
    client = app.test_client()
    assert AuthActions(client).login().status_code == 303
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "settings.example.com"}
    assert client.get("/probe", headers=headers).status_code == 200
    assert seen == [expected]
