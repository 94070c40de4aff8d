"""The CSRF token every page hands out: one per session, valid on every host, and only there.

Flask-WTF's signature carries a timestamp that nothing checks without a time limit, so a
process signs each session's token once and hands it out again (``app.http.csrf``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.preferences import snapshot as snapshots
from tests.conftest import AuthActions
from tests.test_cache import make_app

__all__ = ["make_app"]

#: The token in the page's meta tag and in every form's hidden field.
TOKENS = re.compile(r'(?:name="csrf_token"[^>]*\svalue|name="csrf-token"\scontent)="([^"]+)"')


def tokens_on(client: FlaskClient, path: str) -> set[str]:
    """Every CSRF token a page shows."""
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    found = set(TOKENS.findall(response.get_data(as_text=True)))
    assert found, f"no CSRF token on {path}"
    return found


def only_token(client: FlaskClient, path: str = "/settings") -> str:
    """The one token a page shows, in its meta tag and its forms alike."""
    found = tokens_on(client, path)
    assert len(found) == 1, found
    return found.pop()


def patch(client: FlaskClient, token: str, document: dict[str, Any]) -> int:
    """Status of a settings write through the API carrying ``token``."""
    headers = {"X-CSRFToken": token}
    return client.patch("/api/user/settings", json=document, headers=headers).status_code


def stored_theme(app: Flask, user: int) -> Any:
    with app.app_context():
        snapshot = snapshots.load_snapshot(user)
        assert snapshot is not None
        return snapshot.choices.get("theme")


def new_session(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert AuthActions(client).login().status_code == 303
    return client


def test_a_session_keeps_its_token_and_every_page_shows_a_valid_one(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    token = only_token(signed_in)
    assert only_token(signed_in) == token  # a kept copy of the page, with the kept token
    # Pages rendered with a form sign the token as Flask-WTF's form does, each one
    # token throughout (meta tag, form, sign-out); any signature of it is valid.
    shown = [token, only_token(signed_in, "/dashboard"), only_token(signed_in, "/settings?again=1")]
    for theme, each in zip(["dark", "light", "system"], shown, strict=True):
        assert patch(signed_in, each, {"theme": theme}) == 200
        assert stored_theme(app, user) == theme


def test_one_sessions_token_is_refused_in_another(app: Flask, user: int) -> None:
    one, two = new_session(app), new_session(app)
    token_one, token_two = only_token(one), only_token(two)
    assert token_one != token_two
    assert patch(two, token_one, {"theme": "dark"}) == 403
    assert stored_theme(app, user) is None
    assert patch(one, token_one, {"theme": "dark"}) == 200
    assert patch(two, token_two, {"theme": "light"}) == 200
    assert stored_theme(app, user) == "light"


def test_signing_in_again_gives_a_new_token(
    app: Flask, signed_in: FlaskClient, auth: AuthActions, user: int
) -> None:
    before = only_token(signed_in)
    assert auth.logout().status_code == 303
    assert auth.login().status_code == 303
    after = only_token(signed_in)
    assert after != before
    assert patch(signed_in, before, {"theme": "dark"}) == 403
    assert stored_theme(app, user) is None
    assert patch(signed_in, after, {"theme": "dark"}) == 200


def test_a_token_signed_on_one_host_is_accepted_on_another(
    app: Flask, make_app: Callable[..., Flask], signed_in: FlaskClient, user: int
) -> None:
    other_host = make_app()
    here_token = only_token(signed_in)
    # The same browser, its request sent to the other host.
    cookie = signed_in.get_cookie("session")
    assert cookie is not None
    there = other_host.test_client()
    there.set_cookie("session", cookie.value)
    there_token = only_token(there)
    assert patch(there, here_token, {"theme": "dark"}) == 200
    assert patch(signed_in, there_token, {"theme": "light"}) == 200
    assert stored_theme(app, user) == "light"


@pytest.mark.parametrize("config_overrides", [{"WTF_CSRF_TIME_LIMIT": 3600}])
def test_with_a_time_limit_each_view_is_signed_anew(signed_in: FlaskClient) -> None:
    """A time limit is checked against the signature's time, so no signature is reused."""
    first = only_token(signed_in)
    time.sleep(1.1)  # the signature's timestamp is in whole seconds
    second = only_token(signed_in)
    assert second != first
    assert patch(signed_in, first, {"theme": "dark"}) == 200
    assert patch(signed_in, second, {"theme": "light"}) == 200
