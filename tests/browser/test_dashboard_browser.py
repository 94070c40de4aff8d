"""The dashboard in headless Chromium: loading and error states, the optimistic theme
control, sync across tabs and devices, screenshots and an axe scan in both themes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, Request, Response, Route, expect

from app.extensions import db
from app.models import User
from app.preferences import service
from app.preferences import snapshot as snapshots
from tests.browser.conftest import LiveServer, run_axe, screenshot, sign_in

pytestmark = pytest.mark.browser

API = "**/api/user/settings"
#: Long enough that no poll happens during a test, so only the mechanism under test acts.
NO_POLLING = 600
#: Short enough that a test waits for a poll without slowing the suite.
FAST_POLL = 0.5


@pytest.fixture
def open_dashboard(live_app: Flask, live_server: LiveServer) -> Iterator[Callable[..., Page]]:
    """Open the dashboard in a signed-in page and wait until the API confirmed it.

    Every script error on those pages (an uncaught exception or rejected promise) fails
    the test at teardown.
    """
    errors: list[str] = []

    def open_(page: Page, *, poll_seconds: float = NO_POLLING, wait: bool = True) -> Page:
        live_app.config["DASHBOARD_POLL_SECONDS"] = poll_seconds
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/dashboard")
        if wait:
            expect(page.locator("#sync-status")).to_have_attribute("data-status", "ok")
        return page

    yield open_
    assert errors == []


@pytest.fixture
def device(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> Callable[..., BrowserContext]:
    """A new signed-in browser context: one more "device" of ``browser_user``."""

    def make(**options: Any) -> BrowserContext:
        context = new_context(**options)
        page = context.new_page()
        sign_in(page, live_server.url, browser_user)
        page.close()
        return context

    return make


def set_theme(live_app: Flask, theme: str) -> None:
    """Save the user's theme straight through the service, as another device would."""
    with live_app.app_context():
        user_id = db.session.execute(db.select(User.id)).scalar_one()
        service.update_settings(user_id, {"theme": theme})


def html_theme(page: Page) -> Any:
    """``<html data-theme>`` as the page has it now."""
    return page.evaluate("document.documentElement.dataset.theme")


def choose(page: Page, theme: str) -> None:
    """Pick a theme in the dashboard's control, as a person would.

    A click, not ``check()``: a failed save may rightly uncheck it again at once.
    """
    page.get_by_role("radio", name=theme.capitalize()).click()


def checked_theme(page: Page) -> Any:
    """The value of the checked radio of the theme control."""
    return page.evaluate("document.querySelector('#theme-picker input:checked').value")


# --- loading, showing, error and retry --------------------------------------------------


def test_loading_state_until_the_api_answers(
    signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = signed_in_page
    held: list[Route] = []
    page.route(API, lambda route: held.append(route))
    open_dashboard(page, wait=False)
    status = page.locator("#sync-status")
    expect(status).to_have_attribute("data-status", "loading")
    expect(status).to_contain_text("Loading your settings")
    expect(page.locator("#settings-summary")).to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(300)  # the answer is held: the page must still be loading
    expect(status).to_have_attribute("data-status", "loading")
    assert held, "the dashboard did not ask the API"
    for route in held:
        route.continue_()
    expect(status).to_have_attribute("data-status", "ok")
    expect(status).to_contain_text("Up to date")
    expect(page.locator("#settings-summary")).to_have_attribute("aria-busy", "false")


def test_shows_the_settings_from_the_api(
    live_app: Flask, signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    with live_app.app_context():
        user_id = db.session.execute(db.select(User.id)).scalar_one()
        service.update_settings(
            user_id,
            {
                "theme": "dark",
                "locale": "de",
                "timezone": "Asia/Tokyo",
                "notifications.push": True,
                "notifications.digest": "daily",
            },
        )
    page = open_dashboard(signed_in_page)
    summary = page.locator("#settings-summary")
    assert html_theme(page) == "dark"
    expect(summary.locator("[data-key=locale]")).to_have_text("Deutsch")
    # As the settings page names it: the place in the user's language, and its offset now.
    expect(summary.locator("[data-key=timezone]")).to_have_text(
        "Japanische Zeit (Tokio) · UTC+09:00"
    )
    expect(summary.locator("[data-key='notifications.push'] [data-on]")).to_have_attribute(
        "data-on", "true"
    )
    assert checked_theme(page) == "dark"
    expect(page.locator("#updated-at")).not_to_have_attribute("datetime", "")


def test_api_unreachable_shows_error_and_retry_recovers(
    signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = signed_in_page
    page.route(API, lambda route: route.abort("connectionrefused"))
    open_dashboard(page, wait=False)
    error = page.locator("#dashboard-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("could not be loaded")
    expect(error).to_contain_text("could not be reached")
    expect(page.locator("#sync-status")).to_have_attribute("data-status", "offline")
    expect(page.locator("#live-region")).to_contain_text("could not be loaded")
    screenshot(page, "dashboard-error")

    page.unroute(API)
    page.get_by_role("button", name="Retry").click()
    expect(error).to_be_hidden()
    expect(page.locator("#sync-status")).to_have_attribute("data-status", "ok")


# --- the optimistic theme control -------------------------------------------------------


def test_theme_change_applies_at_once_and_saves_with_csrf_and_if_match(
    live_app: Flask, signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = open_dashboard(signed_in_page)
    etag = page.evaluate("document.getElementById('dashboard').dataset.settingsEtag")
    with page.expect_request(lambda r: r.method == "PATCH") as patch_info:
        choose(page, "dark")
        # Optimistic: the page is dark before the server has answered.
        assert html_theme(page) == "dark"
    patch: Request = patch_info.value
    headers = patch.all_headers()
    assert headers["x-csrftoken"]
    assert headers["if-match"] == etag
    assert headers["content-type"] == "application/merge-patch+json"
    assert json.loads(patch.post_data or "") == {"theme": "dark"}

    message = page.locator("#theme-message")
    expect(message).to_contain_text("Theme saved: Dark")
    expect(page.locator("#live-region")).to_contain_text("Theme saved: Dark")
    expect(page.locator("#settings-summary [data-key=theme]")).to_have_text("Dark")
    with live_app.app_context():
        user_id = db.session.execute(db.select(User.id)).scalar_one()
        assert snapshots.get_settings(user_id).values["theme"] == "dark"
    # The next page load is already dark: no flash of the old theme.
    page.reload()
    assert html_theme(page) == "dark"


def test_forced_500_reverts_the_control_and_says_why(
    signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = open_dashboard(signed_in_page)
    assert checked_theme(page) == "system"

    def fail(route: Route) -> None:
        if route.request.method != "PATCH":
            route.continue_()
            return
        route.fulfill(
            status=500,
            content_type="application/problem+json",
            body=json.dumps(
                {"title": "Internal Server Error", "status": 500, "detail": "The database is away."}
            ),
        )

    page.route(API, fail)
    choose(page, "dark")
    message = page.locator("#theme-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("not saved")
    expect(message).to_contain_text("The database is away.")
    expect(message).to_have_attribute("data-kind", "error")
    expect(page.locator("#live-region")).to_contain_text("The database is away.")
    assert checked_theme(page) == "system"
    assert html_theme(page) == "system"
    screenshot(page, "dashboard-save-failed")


def test_server_stopped_reverts_the_control_and_says_why(
    live_server: LiveServer, signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = open_dashboard(signed_in_page, poll_seconds=FAST_POLL)
    live_server.stop()
    choose(page, "light")
    message = page.locator("#theme-message")
    expect(message).to_contain_text("not saved")
    expect(message).to_contain_text("could not be reached")
    assert checked_theme(page) == "system"
    assert html_theme(page) == "system"
    # The next poll fails too, and the page says it may be out of date.
    expect(page.locator("#dashboard-error")).to_contain_text("may be out of date")
    expect(page.locator("#sync-status")).to_have_attribute("data-status", "offline")


def test_stale_etag_gets_412_reloads_and_says_another_device_changed_it(
    device: Callable[..., BrowserContext], open_dashboard: Callable[..., Page]
) -> None:
    first = open_dashboard(device().new_page())
    second = open_dashboard(device().new_page())
    choose(second, "dark")
    expect(second.locator("#theme-message")).to_contain_text("Theme saved")
    # The first device has not polled since, so it still holds the old ETag.
    assert html_theme(first) == "system"

    statuses: list[int] = []
    first.on(
        "response",
        lambda r: statuses.append(r.status) if r.request.method == "PATCH" else None,
    )
    choose(first, "light")
    message = first.locator("#theme-message")
    expect(message).to_contain_text("changed on another device")
    expect(message).to_contain_text("Dark")
    expect(first.locator("#live-region")).to_contain_text("changed on another device")
    assert statuses == [412]
    # It shows what the other device saved, not its own lost choice.
    assert checked_theme(first) == "dark"
    assert html_theme(first) == "dark"
    expect(first.locator("#settings-summary [data-key=theme]")).to_have_text("Dark")
    # Choosing again now works.
    choose(first, "light")
    expect(message).to_contain_text("Theme saved: Light")


# --- sync ---------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["BroadcastChannel", "storage event"])
def test_two_tabs_follow_each_others_theme_without_reload(
    device: Callable[..., BrowserContext], open_dashboard: Callable[..., Page], channel: str
) -> None:
    context = device()
    if channel == "storage event":
        # Browsers without BroadcastChannel fall back to localStorage's storage event.
        context.add_init_script("delete window.BroadcastChannel")
    one = open_dashboard(context.new_page())
    two = open_dashboard(context.new_page())
    two.evaluate("window.__notReloaded = true")
    assert two.evaluate("'BroadcastChannel' in window") is (channel == "BroadcastChannel")

    choose(one, "dark")
    expect(two.locator("html")).to_have_attribute("data-theme", "dark", timeout=2000)
    assert checked_theme(two) == "dark"
    expect(two.locator("#settings-summary [data-key=theme]")).to_have_text("Dark")
    expect(two.locator("#theme-message")).to_contain_text("changed in another tab")

    choose(two, "light")
    expect(one.locator("html")).to_have_attribute("data-theme", "light", timeout=2000)
    assert checked_theme(one) == "light"
    assert two.evaluate("window.__notReloaded") is True


def test_settings_page_tab_follows_the_dashboard_and_back(
    live_server: LiveServer,
    device: Callable[..., BrowserContext],
    open_dashboard: Callable[..., Page],
) -> None:
    context = device()
    dashboard = open_dashboard(context.new_page())
    settings = context.new_page()
    settings.goto(f"{live_server.url}/settings")
    settings.wait_for_load_state("networkidle")
    settings.evaluate("window.__notReloaded = true")
    settings_theme = settings.locator("#setting-theme")

    # Dashboard to settings page: the theme at once, and the form shows the new value.
    choose(dashboard, "dark")
    expect(settings.locator("html")).to_have_attribute("data-theme", "dark", timeout=2000)
    expect(settings_theme.get_by_role("radio", name="Dark")).to_be_checked(timeout=2000)

    # Settings page (htmx, announced with `settings-saved`) to dashboard.
    settings_theme.get_by_role("radio", name="Light").check()
    expect(dashboard.locator("html")).to_have_attribute("data-theme", "light", timeout=2000)
    assert checked_theme(dashboard) == "light"
    expect(dashboard.locator("#theme-message")).to_contain_text("changed in another tab")

    # Another key saved on the settings page shows on the dashboard too.
    settings.locator("#setting-notifications__push").get_by_role("switch").check()
    expect(
        dashboard.locator("#settings-summary [data-key='notifications.push'] [data-on]")
    ).to_have_attribute("data-on", "true", timeout=2000)

    # A write through the shared client on the settings page reaches the dashboard.
    settings.evaluate(
        "async () => { const api = await import('/static/js/api.js');"
        " await api.patchSettings({theme: 'dark'}); }"
    )
    expect(dashboard.locator("html")).to_have_attribute("data-theme", "dark", timeout=2000)
    assert settings.evaluate("window.__notReloaded") is True


def test_two_devices_converge_within_the_poll_interval(
    device: Callable[..., BrowserContext], open_dashboard: Callable[..., Page]
) -> None:
    one = open_dashboard(device().new_page(), poll_seconds=FAST_POLL)
    two = open_dashboard(device().new_page(), poll_seconds=FAST_POLL)
    polls: list[int] = []

    def record(response: Response) -> None:
        if response.request.method == "GET" and response.url.endswith("/api/user/settings"):
            polls.append(response.status)

    two.on("response", record)
    # Unchanged polls cost a 304 and no body.
    deadline = time.monotonic() + 5
    while 304 not in polls and time.monotonic() < deadline:
        two.wait_for_timeout(100)
    assert 304 in polls

    started = time.monotonic()
    choose(one, "dark")
    expect(two.locator("html")).to_have_attribute("data-theme", "dark", timeout=5000)
    assert time.monotonic() - started < FAST_POLL * 4
    assert 200 in polls
    assert checked_theme(two) == "dark"
    expect(two.locator("#theme-message")).to_contain_text("changed on another device")


def test_system_follows_the_operating_system_live(
    live_app: Flask, signed_in_page: Page, open_dashboard: Callable[..., Page]
) -> None:
    page = signed_in_page
    page.emulate_media(color_scheme="light")
    open_dashboard(page)
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    hint = page.locator("#system-hint")
    expect(hint).to_contain_text("light colours")

    page.emulate_media(color_scheme="dark")
    expect(hint).to_contain_text("dark colours")
    assert page.evaluate(background) != light

    choose(page, "light")
    expect(hint).to_be_hidden()


# --- looks and accessibility ---------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshot_and_axe_in_both_themes(
    live_app: Flask,
    signed_in_page: Page,
    open_dashboard: Callable[..., Page],
    theme: str,
) -> None:
    set_theme(live_app, theme)
    page = signed_in_page
    page.emulate_media(color_scheme="light" if theme == "dark" else "dark")
    page.set_viewport_size({"width": 1100, "height": 820})
    open_dashboard(page, poll_seconds=10)
    assert html_theme(page) == theme
    screenshot(page, f"dashboard-{theme}")
    assert run_axe(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, f"dashboard-{theme}-narrow")

    # With a message showing, and on "system", which here means the other palette.
    choose(page, "system")
    expect(page.locator("#theme-message")).to_be_visible()
    expect(page.locator("#settings-summary")).to_have_attribute("aria-busy", "false")
    page.wait_for_timeout(2000)  # the highlight of the changed row has faded
    assert run_axe(page) == []
    screenshot(page, f"dashboard-{theme}-then-system")
