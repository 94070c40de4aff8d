"""Registration, sign-in, sign-out, password policy and change, sessions, CSRF, rate limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from app.preferences import account
from tests.conftest import PASSWORD, AuthActions, csrf_token

CSRF_INPUT_NAMED = re.compile(r'<input type="hidden" name="csrf_token" value="[^"]+">')


def user_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(User)) or 0)


def register(
    client: FlaskClient, email: str, password: str = PASSWORD, confirm: str | None = None
) -> Any:
    return client.post(
        "/register",
        data={
            "email": email,
            "password": password,
            "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_token(client, "/register"),
        },
    )


@pytest.mark.parametrize("path", ["/settings", "/dashboard", "/"])
def test_pages_redirect_anonymous_users_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_api_answers_anonymous_users_with_401(client: FlaskClient) -> None:
    response = client.get("/api/user/settings")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["/login", "/register", "/healthz", "/static/css/app.css"])
def test_public_pages_need_no_login(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 200


def test_register_creates_the_account_then_asks_to_sign_in(client: FlaskClient, app: Flask) -> None:
    response = register(client, "New.Person@Example.com")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?email=new.person@example.com"
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "new.person@example.com"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="new.person@example.com"' in page
    assert AuthActions(client).login("new.person@example.com").status_code == 303
    assert client.get("/settings").status_code == 200


@pytest.mark.parametrize(
    ("email", "password", "confirm", "message"),
    [
        ("not-an-email", PASSWORD, None, "Enter a valid email address."),
        ("a@example.com", "short", None, "Use at least 8 characters."),
        ("a@example.com", PASSWORD, "different password", "The passwords differ."),
        ("", PASSWORD, None, "This field is required."),
    ],
)
def test_register_validate_input(
    client: FlaskClient, app: Flask, email: str, password: str, confirm: str | None, message: str
) -> None:
    response = register(client, email, password, confirm)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_register_twice_creates_nothing_and_says_nothing_whatever_the_case(
    client: FlaskClient, app: Flask, user: int
) -> None:
    """From outside, an email with an account is answered exactly like a new one."""
    taken = register(client, "USER1@example.com", password="another good passphrase")
    fresh = register(app.test_client(), "someone.new@example.com")
    assert user_count(app) == 2
    assert taken.status_code == fresh.status_code == 303
    assert taken.headers["Location"] == "/login?email=user1@example.com"
    taken_page = client.get(taken.headers["Location"]).get_data(as_text=True)
    assert "already exists" not in taken_page
    assert "If user1@example.com had no account yet" in taken_page
    # The existing account keeps its password.
    assert AuthActions(client).login(password="another good passphrase").status_code == 422
    assert AuthActions(client).login().status_code == 303


def test_login_and_remember_me(client: FlaskClient, auth: AuthActions, user: int) -> None:
    response = auth.login(remember=True)
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings"
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith("remember_token="))
    assert "HttpOnly" in remember and "SameSite=Lax" in remember


@pytest.mark.parametrize(
    ("email", "password"),
    [("user1@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
)
def test_failed_login_does_not_reveal_the_email(
    client: FlaskClient, auth: AuthActions, user: int, email: str, password: str
) -> None:
    response = auth.login(email, password)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Wrong email or password." in body
    assert client.get("/settings").status_code == 302


def test_login_follows_only_local_next(client: FlaskClient, user: int) -> None:
    for target, expected in [
        ("/dashboard", "/dashboard"),
        ("https://evil.example/", "/settings"),
        ("//evil.example/", "/settings"),
    ]:
        token = csrf_token(client)
        response = client.post(
            f"/login?next={target}",
            data={"email": "user1@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected
        client.post("/logout", data={"csrf_token": csrf_token(client, "/settings")})


def test_deactivated_user_cannot_sign_in(
    client: FlaskClient, auth: AuthActions, app: Flask, user: int
) -> None:
    with app.app_context():
        account.update_account(user, active=False)
    assert auth.login().status_code == 422


def test_login_without_csrf_token_is_refused(client: FlaskClient, user: int) -> None:
    response = client.post("/login", data={"email": "user1@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "security token" in response.get_data(as_text=True)
    assert client.get("/settings").status_code == 302


def test_logout_by_get_asks_first_and_changes_nothing(signed_in: FlaskClient) -> None:
    response = signed_in.get("/logout")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<title>Sign out? · " in page
    # The page's own form, in <main>; the header has a sign-out form as well.
    main = page[page.index('<main id="main"') :]
    assert re.search(r'<form\b[^>]*\bmethod="post" action="/logout"[^>]*>', main)
    assert CSRF_INPUT_NAMED.search(page)
    assert re.search(r'<a\b[^>]*\bhref="/settings"[^>]*>Cancel</a>', main)
    assert signed_in.get("/settings").status_code == 200
    token = csrf_token(signed_in, "/logout")
    assert signed_in.post("/logout", data={"csrf_token": token}).status_code == 303
    assert signed_in.get("/settings").status_code == 302


def test_logout_by_get_when_signed_out_goes_to_sign_in(client: FlaskClient, user: int) -> None:
    response = client.get("/logout")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    # Signing in from there leads on to the settings, not back to the sign-out question.
    token = csrf_token(client)
    data = {"email": "user1@example.com", "password": PASSWORD, "csrf_token": token}
    signed_in = client.post(response.headers["Location"], data=data)
    assert signed_in.headers["Location"] == "/settings"


def test_logout_refuses_replayed_cookies(client: FlaskClient, auth: AuthActions, user: int) -> None:
    """A session or remember cookie saved before sign-out is worthless afterwards."""
    response = auth.login(remember=True)
    saved = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        saved.load(header)
    assert client.get("/settings").status_code == 200
    assert auth.logout().status_code == 303
    assert client.get("/settings").status_code == 302
    for name in ("session", "remember_token"):
        client.set_cookie(name, saved[name].value)
    assert client.get("/settings").status_code == 302
    client.delete_cookie("session")
    assert client.get("/settings").status_code == 302


def test_password_change_ends_other_sessions(signed_in: FlaskClient, app: Flask, user: int) -> None:
    from app.auth import service as auth_service

    with app.app_context():
        auth_service.change_password(user, "a brand new password")
    assert signed_in.get("/settings").status_code == 302


class TestRateLimit:
    @pytest.fixture
    def config_overrides(self) -> dict[str, Any]:
        # Windows end on the clock; an hour-long one is not crossed while a test runs.
        return {"RATELIMIT_LOGIN": "3 per hour"}

    def test_repeated_failed_logins_are_limited(
        self, client: FlaskClient, auth: AuthActions, user: int
    ) -> None:
        statuses = [auth.login(password="wrong password").status_code for _ in range(4)]
        assert statuses == [422, 422, 422, 429]
        response = auth.login()
        assert response.status_code == 429
        assert "Too many attempts" in response.get_data(as_text=True)

    def test_successful_logins_do_not_count(
        self, client: FlaskClient, auth: AuthActions, user: int
    ) -> None:
        for _ in range(4):
            assert auth.login().status_code == 303
            auth.logout()


# --- the password policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password", "too common"),
        ("12345678", "too common"),
        ("Password123!", "too common"),
        ("dragon2024", "too common"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("abcabcabc", "too easy to guess"),
        ("11111111", "too common"),
        ("qwertyui", "too common"),
        ("zyxwvuts", "too easy to guess"),
        ("asdfjklö", "too easy to guess"),
        ("aabbaabb", "too easy to guess"),
        ("abcd1234efgh", "too easy to guess"),
        ("new.person@example.com", "email address"),
        ("New.Person", "email address"),
        ("new.person1990", "email address"),
        ("short", "Use at least 8 characters."),
        ("x" * 1025, "Use at most 1024 characters."),
    ],
)
def test_register_refuses_weak_passwords(
    client: FlaskClient, app: Flask, password: str, message: str
) -> None:
    response = register(client, "new.person@example.com", password)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert user_count(app) == 0


@pytest.mark.parametrize(
    "password", [PASSWORD, "kq7fz2mw", "Tr0ub4dor&3", "mypassphrase mypassphrase"]
)
def test_policy_accepts_passwords_that_are_hard_to_guess(password: str) -> None:
    from app.auth import passwords

    assert passwords.problems(password, "new.person@example.com") == []


def test_common_list_is_loaded_once_and_lower_cased() -> None:
    from app.auth import passwords

    assert len(passwords.COMMON_PASSWORDS) > 19_000
    assert all(entry == entry.lower() for entry in passwords.COMMON_PASSWORDS)
    assert {"password", "123456", "iloveyou", "qwertyuiop"} <= passwords.COMMON_PASSWORDS
    assert passwords.is_common("PassWord")


def test_cli_create_user_applies_the_same_policy(runner: Any, app: Flask) -> None:
    for password, message in [
        ("password", "too common"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("cli.person@example.com", "email address"),
        ("short", "at least 8 characters"),
    ]:
        result = runner.invoke(
            args=["user", "create", "cli.person@example.com", "--password", password]
        )
        assert result.exit_code == 1, result.output
        assert message in result.output
    assert user_count(app) == 0
    result = runner.invoke(
        args=["user", "create", "cli.person@example.com", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output


def test_register_shows_the_rules_up_front_tied_to_the_field(client: FlaskClient) -> None:
    page = client.get("/register").get_data(as_text=True)
    assert re.search(r'<ul\b[^>]*\bid="password-rules"[^>]*>', page)
    for rule in (
        "Use at least 8 characters.",
        "Don&#39;t use a common password or a pattern such as 12345678, aaaaaaaa or qwertyui.",
        "Don&#39;t use your email address.",
    ):
        assert f"<li>{rule}</li>" in page
    password = re.search(r'<input[^>]*id="password"[^>]*>', page)
    assert password is not None
    assert 'aria-describedby="password-rules"' in password.group(0)
    assert 'autocomplete="new-password"' in password.group(0)
    assert 'minlength="8"' in password.group(0)
    # The rules come before any submit, and no error does.
    assert "error-summary" not in page
    assert "<title>Create account · " in page


def test_failed_register_has_a_linked_error_summary_and_an_error_title(
    client: FlaskClient,
) -> None:
    response = register(client, "not-an-email", "password", confirm="something else")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<title>Error: Create account · " in page
    summary = page[page.index('id="error-summary"') - 80 :]
    assert 'role="alert" tabindex="-1" id="error-summary"' in summary
    assert '<a href="#email">Email: Enter a valid email address.</a>' in summary
    assert '<a href="#password">Password: This password is too common.' in summary
    assert '<a href="#confirm">Repeat password: The passwords differ.</a>' in summary
    password = re.search(r'<input[^>]*id="password"[^>]*>', page)
    assert password is not None
    assert 'aria-describedby="password-rules password-error"' in password.group(0)
    assert 'aria-invalid="true"' in password.group(0)
    # Password fields never come back filled in.
    assert 'value="password"' not in page


def test_failed_login_has_an_error_summary_and_an_error_title(
    client: FlaskClient, auth: AuthActions, user: int
) -> None:
    page = auth.login(password="wrong password").get_data(as_text=True)
    assert "<title>Error: Sign in · " in page
    assert "<li>Wrong email or password.</li>" in page
    assert 'value="user1@example.com"' in page


def test_every_password_field_can_get_a_show_password_button(client: FlaskClient) -> None:
    for path, count in [("/login", 1), ("/register", 2)]:
        page = client.get(path).get_data(as_text=True)
        assert page.count('data-password-toggle="Show password"') == count
        assert page.count('type="password"') == count
        assert "/static/js/password.js" in page


class TestThrottledPages:
    """A throttled form keeps what was typed and says how long to wait, in seconds or minutes."""

    @pytest.fixture
    def wait(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
        from app.auth import throttle

        def refuse(seconds: int) -> None:
            verdict = throttle.Verdict(False, retry_after=seconds)
            monkeypatch.setattr(throttle, "account_attempt", lambda email: verdict)

        return refuse

    def test_sign_in_wait_is_shown_with_a_countdown_element(
        self, client: FlaskClient, auth: AuthActions, user: int, wait: Callable[[int], None]
    ) -> None:
        wait(42)
        response = auth.login()
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "42"
        page = response.get_data(as_text=True)
        assert "<title>Error: Sign in · " in page
        assert re.search(
            r'<span\b[^>]*\bid="retry-notice"[^>]*>Too many attempts\. Please wait '
            r'<span\b[^>]*\bdata-retry-after="42">42 seconds</span> and try again\.</span>',
            page,
        )
        assert 'data-retry-done="You can try again now."' in page
        assert 'value="user1@example.com"' in page
        assert "/static/js/auth.js" in page

    def test_long_waits_are_counted_in_minutes(
        self, client: FlaskClient, auth: AuthActions, user: int, wait: Callable[[int], None]
    ) -> None:
        wait(3000)
        page = auth.login().get_data(as_text=True)
        assert 'data-retry-after="3000">50 minutes</span>' in page


# --- changing the password -------------------------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


def change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> Any:
    return client.post(
        "/account/password",
        data={
            "current_password": current,
            "new_password": new,
            "confirm": new if confirm is None else confirm,
            "csrf_token": csrf_token(client, "/account/password"),
        },
    )


def test_password_page_needs_a_session(client: FlaskClient) -> None:
    response = client.get("/account/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_password_page_shows_the_rules_and_the_account(signed_in: FlaskClient) -> None:
    response = signed_in.get("/account/password")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<title>Change password · " in page
    assert re.search(r'<ul\b[^>]*\bid="password-rules"[^>]*>', page)
    new = re.search(r'<input[^>]*id="new_password"[^>]*>', page)
    assert new is not None and 'aria-describedby="password-rules"' in new.group(0)
    assert 'autocomplete="current-password"' in page
    assert 'autocomplete="username" value="user1@example.com"' in page
    assert page.count('data-password-toggle="Show password"') == 3
    # Reached from the header of every signed-in page.
    assert '<a href="/account/password" aria-current="page">Change password</a>' in page


def test_password_change_keeps_this_session_and_ends_the_others(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    other = app.test_client()
    assert AuthActions(other).login().status_code == 303
    assert other.get("/settings").status_code == 200

    response = change(signed_in, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings"
    page = signed_in.get("/settings")
    assert page.status_code == 200
    assert "Your password was changed. Other devices have been signed out." in page.get_data(
        as_text=True
    )
    assert other.get("/settings").status_code == 302
    assert AuthActions(other).login().status_code == 422
    assert AuthActions(other).login(password=NEW_PASSWORD).status_code == 303


def test_password_change_renews_this_devices_remember_cookie(
    app: Flask, client: FlaskClient, auth: AuthActions, user: int
) -> None:
    assert auth.login(remember=True).status_code == 303
    response = change(client, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 303
    renewed = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    assert renewed and "Expires=Thu, 01 Jan 1970" not in renewed[0]
    # With only the renewed remember cookie (a browser restart), this device is still in.
    client.delete_cookie("session")
    assert client.get("/settings").status_code == 200


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field", "message"),
    [
        (
            "wrong password",
            NEW_PASSWORD,
            None,
            "current_password",
            "This is not your current password.",
        ),
        (PASSWORD, "password", None, "new_password", "too common"),
        (PASSWORD, "user1@example.com", None, "new_password", "email address"),
        (PASSWORD, "aaaaaaaaaaaa", None, "new_password", "too easy to guess"),
        (PASSWORD, NEW_PASSWORD, "something else", "confirm", "The passwords differ."),
        (PASSWORD, PASSWORD, None, "new_password", "The new password is your current one."),
        ("", NEW_PASSWORD, None, "current_password", "This field is required."),
    ],
)
def test_password_change_validate_input(
    signed_in: FlaskClient,
    app: Flask,
    current: str,
    new: str,
    confirm: str | None,
    field: str,
    message: str,
) -> None:
    response = change(signed_in, current, new, confirm)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<title>Error: Change password · " in page
    assert re.search(rf'<p\b[^>]*\bid="{field}-error"[^>]*>', page)
    assert message in page[page.index(f'id="{field}-error"') :]
    assert f'<a href="#{field}">' in page
    # Nothing changed: still signed in, and the old password still works.
    assert signed_in.get("/settings").status_code == 200
    assert AuthActions(app.test_client()).login().status_code == 303


def test_a_wrong_current_password_and_a_weak_new_one_are_both_reported(
    signed_in: FlaskClient,
) -> None:
    page = change(signed_in, "wrong password", "password").get_data(as_text=True)
    assert "This is not your current password." in page
    assert "too common" in page


class TestPasswordChangeThrottle:
    """The current-password check counts as a sign-in attempt of the account."""

    @pytest.fixture
    def config_overrides(self) -> dict[str, Any]:
        return {"SIGNIN_FREE_FAILURES": 2, "SIGNIN_MAX_DELAY": 60.0}

    def test_guessing_the_current_password_is_throttled(
        self, signed_in: FlaskClient, app: Flask
    ) -> None:
        # The session's browser signed in moments ago: that buys no exemption here.
        guesses = [change(signed_in, guess, NEW_PASSWORD) for guess in ("guess 1", "guess 2")]
        assert [guess.status_code for guess in guesses] == [422, 422]
        warning = "After another wrong password, signing in to this account will pause."
        assert any(warning in guess.get_data(as_text=True) for guess in guesses)
        response = change(signed_in, PASSWORD, NEW_PASSWORD)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        page = response.get_data(as_text=True)
        assert "data-retry-after=" in page
        assert "<title>Error: Change password · " in page
        # Throttled per account: signing in elsewhere waits as well, and nothing changed.
        assert AuthActions(app.test_client()).login().status_code == 429
        assert signed_in.get("/settings").status_code == 200
