"""Sign-up, sign-in, password change and sign-out pages in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Locator, Page, expect

from app.auth import throttle
from tests.browser.conftest import LiveServer, run_axe, screenshot, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"


def assert_no_violations(page: Page) -> None:
    """axe-core finds nothing on the page."""
    violations = run_axe(page)
    summary = [(v["id"], [node["target"] for node in v["nodes"]]) for v in violations]
    assert violations == [], summary


def toggles(page: Page) -> Locator:
    """Every show-password button password.js added to the page, hidden ones included."""
    return page.get_by_role("button", name="Show password", exact=True, include_hidden=True)


def toggle(field: str) -> str:
    """The show-password button of the password input with id ``field``: right after it."""
    return f"#{field} + button"


def active_id(page: Page) -> str:
    """The id of the element that has focus."""
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def test_sign_up_shows_the_rules_before_any_submit(
    live_server: LiveServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context().new_page()
    page.goto(f"{live_server.url}/register")
    password = page.locator("#password")
    rules = page.locator("#password-rules")
    expect(rules).to_be_visible()
    expect(rules).to_contain_text("Use at least 8 characters.")
    expect(rules).to_contain_text("Don't use a common password or a pattern")
    expect(rules).to_contain_text("Don't use your email address.")
    expect(password).to_have_attribute("aria-describedby", "password-rules")
    # What a screen reader says on reaching the field: its name, then the rules.
    description = page.evaluate(
        """() => document.getElementById('password').getAttribute('aria-describedby')
            .split(' ').map((id) => document.getElementById(id).textContent.trim()).join(' ')"""
    )
    assert "Use at least 8 characters." in description
    expect(page.locator("#error-summary")).to_have_count(0)
    assert_no_violations(page)


@pytest.mark.parametrize("password", ["password", "12345678", "aaaaaaaaaaaa", "qwertyui"])
def test_sign_up_refuses_a_weak_password_with_a_focused_summary(
    live_server: LiveServer, new_context: Callable[..., BrowserContext], password: str
) -> None:
    page = new_context().new_page()
    page.goto(f"{live_server.url}/register")
    page.fill("#email", "new.person@example.com")
    page.fill("#password", password)
    page.fill("#confirm", password)
    page.click("button[type=submit]")
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: Create account")
    link = summary.locator("a[href='#password']")
    expect(link).to_contain_text("Password: This password is too")
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password")).to_have_attribute(
        "aria-describedby", "password-rules password-error"
    )
    expect(page.locator("#email")).to_have_value("new.person@example.com")
    # The summary's link puts the cursor in the field, not just the field in view.
    link.click()
    assert active_id(page) == "password"


def test_error_pages_in_light_and_dark_are_accessible(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        page.goto(f"{live_server.url}/register")
        page.fill("#email", "not an address")
        page.fill("#password", "12345678")
        page.fill("#confirm", "1234567")
        page.click("button[type=submit]")
        expect(page.locator("#error-summary li")).to_have_count(3)
        page.locator(toggle("password")).click()
        assert_no_violations(page)
        screenshot(page, f"auth-register-errors-{scheme}")

        sign_in(page, live_server.url, browser_user)
        page.goto(f"{live_server.url}/account/password")
        page.fill("#current_password", "not my password")
        page.fill("#new_password", "password")
        page.fill("#confirm", "password")
        page.click("form[action='/account/password'] button[type=submit]")
        expect(page.locator("#error-summary")).to_be_focused()
        assert page.title().startswith("Error: Change password")
        assert_no_violations(page)
        screenshot(page, f"auth-password-errors-{scheme}")


def assert_fits(page: Page, selectors: list[str]) -> None:
    """Nothing scrolls sideways on a 320 px screen, and each element is wholly on it."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    for selector in selectors:
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320, selector


def test_narrow_screen_keeps_every_field_and_button_inside(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(viewport={"width": 320, "height": 700}).new_page()
    page.goto(f"{live_server.url}/register")
    page.fill("#password", "password")
    page.click("button[type=submit]")
    assert_fits(page, ["#password", toggle("password"), "#confirm"])
    screenshot(page, "auth-register-320")

    sign_in(page, live_server.url, browser_user)
    page.goto(f"{live_server.url}/account/password")
    page.click("form[action='/account/password'] button[type=submit]")
    assert_fits(
        page,
        [
            toggle("current_password"),
            "#new_password",
            "form[action='/account/password'] button[type=submit]",
            "header a[href='/account/password']",
        ],
    )
    screenshot(page, "auth-password-320")


def test_every_password_field_has_a_show_password_toggle(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context().new_page()
    for path, fields in [
        ("/login", ["password"]),
        ("/register", ["password", "confirm"]),
    ]:
        page.goto(f"{live_server.url}{path}")
        expect(toggles(page)).to_have_count(len(fields))
        for field in fields:
            toggle_shows_and_hides(page, field)
    sign_in(page, live_server.url, browser_user)
    page.goto(f"{live_server.url}/account/password")
    expect(toggles(page)).to_have_count(3)
    for field in ("current_password", "new_password", "confirm"):
        toggle_shows_and_hides(page, field)


def toggle_shows_and_hides(page: Page, field: str) -> None:
    """The field's button shows the password as text, then hides it again."""
    input_ = page.locator(f"#{field}")
    button = page.locator(toggle(field))
    expect(button).to_have_accessible_name("Show password")
    expect(button).to_have_attribute("type", "button")
    expect(button).to_have_attribute("aria-controls", field)
    expect(button).to_have_attribute("aria-pressed", "false")
    input_.fill("secret typed here")
    button.click()
    expect(input_).to_have_attribute("type", "text")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(input_).to_have_value("secret typed here")
    # By keyboard as well: Space on the focused button.
    button.focus()
    page.keyboard.press("Space")
    expect(input_).to_have_attribute("type", "password")
    expect(button).to_have_attribute("aria-pressed", "false")


def test_shown_password_is_hidden_again_when_the_form_is_sent(
    live_server: LiveServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context().new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("#email", "person@example.com")
    page.fill("#password", "wrong password")
    page.click(toggle("password"))
    expect(page.locator("#password")).to_have_attribute("type", "text")
    # Listening after password.js did, and keeping the page, to see what would be sent.
    page.evaluate(
        """() => document.querySelector('main form').addEventListener('submit', (event) => {
            window.typeAtSubmit = event.target.password.type;
            event.preventDefault();
        })"""
    )
    page.click("main button[type=submit]")
    assert page.evaluate("window.typeAtSubmit") == "password"
    expect(page.locator(toggle("password"))).to_have_attribute("aria-pressed", "false")


def test_pages_work_without_javascript(
    live_server: LiveServer, live_app: Flask, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/register")
    expect(toggles(page)).to_have_count(0)
    expect(page.locator("#password-rules")).to_be_visible()
    page.fill("#email", "nojs@example.com")
    page.fill("#password", "password")
    page.fill("#confirm", "password")
    page.click("button[type=submit]")
    expect(page.locator("#error-summary")).to_be_visible()
    assert page.title().startswith("Error: ")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/login\?email="))
    page.fill("#password", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/settings")


def test_password_change_signs_out_other_devices_and_keeps_this_one(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    laptop = new_context().new_page()
    phone = new_context().new_page()
    sign_in(laptop, live_server.url, browser_user)
    sign_in(phone, live_server.url, browser_user)

    # From the header of every signed-in page.
    laptop.get_by_role("link", name="Change password").click()
    laptop.wait_for_url(f"{live_server.url}/account/password")
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Change password")
    expect(laptop.locator("#new_password")).to_have_attribute("aria-describedby", "password-rules")
    laptop.fill("#current_password", PASSWORD)
    laptop.fill("#new_password", NEW_PASSWORD)
    laptop.fill("#confirm", NEW_PASSWORD)
    laptop.click("form[action='/account/password'] button[type=submit]")
    laptop.wait_for_url(f"{live_server.url}/settings")
    expect(laptop.locator("#flashes")).to_contain_text(
        "Your password was changed. Other devices have been signed out."
    )
    laptop.reload()
    expect(laptop).to_have_url(f"{live_server.url}/settings")

    phone.goto(f"{live_server.url}/settings")
    expect(phone).to_have_url(re.compile(r"/login"))
    sign_in(phone, live_server.url, browser_user, NEW_PASSWORD)


def test_wrong_current_password_is_a_field_error(
    signed_in_page: Page, live_server: LiveServer
) -> None:
    page = signed_in_page
    page.goto(f"{live_server.url}/account/password")
    page.fill("#current_password", "not my password")
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/account/password")) as answer:
        page.click("form[action='/account/password'] button[type=submit]")
    assert answer.value.status == 422
    expect(page.locator("#current_password-error")).to_have_text(
        "This is not your current password."
    )
    expect(page.locator("#current_password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-summary a[href='#current_password']")).to_be_visible()


def test_throttled_sign_in_counts_down_and_keeps_the_email(
    live_server: LiveServer,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        throttle, "account_attempt", lambda email: throttle.Verdict(False, retry_after=3)
    )
    page = new_context().new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("#email", browser_user)
    page.fill("#password", PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        page.click("main button[type=submit]")
    assert answer.value.status == 429
    assert answer.value.headers["retry-after"] == "3"
    expect(page.locator("#email")).to_have_value(browser_user)
    time = page.locator("[data-retry-after]")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary")).to_contain_text("Too many attempts. Please wait")
    expect(time).to_have_text("3 seconds")
    expect(time).to_have_text("2 seconds", timeout=2500)
    expect(time).to_have_attribute("data-retry-after", "2")
    expect(time).to_have_text("1 second", timeout=2500)
    notice = page.locator("#retry-notice")
    expect(notice).to_have_text("You can try again now.", timeout=2500)
    expect(page.locator("#live-region")).to_have_text("You can try again now.")
    assert_no_violations(page)


def test_throttled_sign_in_without_javascript_keeps_the_sentence(
    live_server: LiveServer,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        throttle, "account_attempt", lambda email: throttle.Verdict(False, retry_after=300)
    )
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("#email", browser_user)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("#error-summary")).to_contain_text(
        "Too many attempts. Please wait 5 minutes and try again."
    )
    page.wait_for_timeout(1200)
    expect(page.locator("[data-retry-after]")).to_have_text("5 minutes")


def test_sign_out_address_asks_first(
    signed_in_page: Page, live_server: LiveServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = signed_in_page
    page.goto(f"{live_server.url}/logout")
    expect(page).to_have_title(re.compile(r"^Sign out\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out?")
    assert_no_violations(page)
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{live_server.url}/settings")
    page.goto(f"{live_server.url}/logout")
    page.locator("main").get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.locator("#flashes")).to_contain_text("You have been signed out.")

    # Signed out, the same address leads to the sign-in page.
    page.goto(f"{live_server.url}/logout")
    expect(page).to_have_url(re.compile(r"/login"))
