"""The settings page in headless Chromium, with script on and off."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from tests.browser.conftest import LiveServer, run_axe, screenshot, sign_in
from tests.browser.test_experience_browser import stored

pytestmark = pytest.mark.browser

#: Body backgrounds of the two palettes in static/css/app.css.
LIGHT_BG = "rgb(245, 246, 248)"
DARK_BG = "rgb(15, 18, 23)"


#: The note the settings form shows once script saves every change as it is made.
LIVE_NOTE = "Changes are saved as you make them."


def save_button(page: Page) -> Locator:
    """The form's "Save settings" button, shown only without script (hidden ones too)."""
    return page.get_by_role("button", name="Save settings", exact=True, include_hidden=True)


def zone_suggestion(page: Page) -> Locator:
    """The button offering this device's time zone (hidden ones too)."""
    return page.get_by_role(
        "button", name=re.compile(r"^Use this device's zone:"), include_hidden=True
    )


def background(page: Page) -> str:
    """The computed background colour of the page body."""
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def saved(page: Page, field: str) -> Any:
    """Context manager waiting for the htmx save of ``field``."""
    return page.expect_response(
        lambda response: (
            response.url.endswith(f"/settings/{field}") and response.request.method == "POST"
        )
    )


def pick_zone(page: Page, search: str) -> None:
    """Search the time-zone picker and pick the first match, as a keyboard user would."""
    picker = page.get_by_role("combobox", name="Time zone")
    picker.fill(search)
    page.keyboard.press("Enter")


def assert_no_violations(page: Page) -> None:
    """axe-core finds nothing on the page."""
    violations = run_axe(page)
    summary = [(v["id"], [node["target"] for node in v["nodes"]]) for v in violations]
    assert violations == [], summary


def test_each_preference_saves_with_htmx(signed_in_page: Page, live_server: LiveServer) -> None:
    page = signed_in_page
    # The note shows, and the save button hides, once the form saves each change itself.
    expect(page.get_by_text(LIVE_NOTE, exact=True)).to_be_visible()
    expect(save_button(page)).to_be_hidden()
    expect(page.locator("#last-saved")).to_contain_text("Never changed")
    assert page.evaluate("document.documentElement.dataset.theme") == "system"

    with saved(page, "theme") as response:
        page.get_by_label("Dark", exact=True).check()
    assert response.value.status == 200
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == DARK_BG
    expect(page.locator("#live-region")).to_have_text("Saved")
    expect(page.locator("#last-saved")).to_contain_text("Last saved")

    with saved(page, "notifications__email"):
        page.get_by_role("switch", name="Email notifications").click()
    expect(page.get_by_role("switch", name="Email notifications")).not_to_be_checked()
    with saved(page, "notifications__push"):
        page.get_by_role("switch", name="Push notifications").click()
    expect(page.get_by_role("switch", name="Push notifications")).to_be_checked()
    with saved(page, "notifications__digest"):
        page.get_by_label("Summary email").select_option("daily")
    with saved(page, "timezone"):
        pick_zone(page, "Tokyo")
    expect(page.locator("#last-saved time")).to_be_visible()

    # A language change reloads the page in that language.
    with page.expect_navigation():
        page.get_by_label("Language").select_option("fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")

    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    expect(page.locator("#theme-1")).to_be_checked()
    expect(page.locator("#notifications__email")).not_to_be_checked()
    expect(page.locator("#notifications__push")).to_be_checked()
    expect(page.locator("#notifications__digest")).to_have_value("daily")
    expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")
    expect(page.locator("#locale")).to_have_value("fr")

    with saved(page, "theme"):
        page.locator("#theme-0").check()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background(page) == LIGHT_BG


def test_each_preference_saves_without_script(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, live_server.url, browser_user)
    expect(save_button(page)).to_be_visible()
    expect(zone_suggestion(page)).to_have_count(1)
    expect(zone_suggestion(page)).to_be_hidden()

    page.get_by_label("Dark", exact=True).check()
    page.get_by_label("Language").select_option("de")
    page.get_by_label("Time zone").select_option("America/Argentina/Buenos_Aires")
    page.get_by_role("switch", name="Email notifications").uncheck()
    page.get_by_role("switch", name="Push notifications").check()
    page.get_by_label("Summary email").select_option("off")
    with page.expect_navigation():
        save_button(page).click()

    expect(page.locator("#flashes")).to_be_visible()
    expect(page.locator("#flashes")).to_have_text("Gespeichert")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == DARK_BG

    page.goto(f"{live_server.url}/settings")
    expect(page.locator("#flashes")).to_have_count(0)
    expect(page.locator("#theme-1")).to_be_checked()
    expect(page.locator("#locale")).to_have_value("de")
    expect(page.locator("#timezone")).to_have_value("America/Argentina/Buenos_Aires")
    expect(page.locator("#notifications__email")).not_to_be_checked()
    expect(page.locator("#notifications__push")).to_be_checked()
    expect(page.locator("#notifications__digest")).to_have_value("off")
    expect(page.locator("#last-saved time")).to_be_visible()


def test_device_zone_is_offered_and_saved_in_one_click(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(timezone_id="America/New_York").new_page()
    sign_in(page, live_server.url, browser_user)
    button = zone_suggestion(page)
    expect(button).to_be_visible()
    expect(button).to_contain_text("Eastern Time (New York) · UTC-0")
    with saved(page, "timezone"):
        button.click()
    expect(page.locator("#timezone")).to_have_value("America/New_York")
    expect(page.get_by_role("combobox", name="Time zone")).to_be_focused()
    expect(page.get_by_role("combobox", name="Time zone")).to_have_value(re.compile("New York"))
    expect(button).to_be_hidden()
    page.reload()
    expect(page.locator("#timezone")).to_have_value("America/New_York")
    expect(zone_suggestion(page)).to_have_count(1)
    expect(zone_suggestion(page)).to_be_hidden()


def test_device_zone_reported_by_a_legacy_name_is_offered_as_the_canonical_one(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(timezone_id="Asia/Kolkata").new_page()
    sign_in(page, live_server.url, browser_user)
    # Chromium's ICU still calls Kolkata by its old name.
    reported = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert reported in {"Asia/Calcutta", "Asia/Kolkata"}
    button = zone_suggestion(page)
    expect(button).to_contain_text("India Standard Time (Kolkata) · UTC+05:30")
    with saved(page, "timezone"):
        button.click()
    expect(page.locator("#timezone")).to_have_value("Asia/Kolkata")
    assert stored(live_app, browser_user)["timezone"] == "Asia/Kolkata"


def test_slow_save_shows_spinner(signed_in_page: Page) -> None:
    page = signed_in_page
    held: list[Route] = []
    page.route("**/settings/notifications__push", lambda route: held.append(route))
    page.get_by_role("switch", name="Push notifications").click()
    spinner = page.locator("#notifications__push-spinner")
    # Polled by Playwright, not evaluated in the page, whose CSP forbids eval.
    expect(spinner).to_have_css("opacity", "1")
    with saved(page, "notifications__push"):
        held[0].continue_()
    expect(page.locator("#notifications__push-spinner")).to_have_css("opacity", "0")
    expect(page.get_by_role("switch", name="Push notifications")).to_be_checked()


def test_failed_save_puts_control_back_and_says_so(signed_in_page: Page) -> None:
    page = signed_in_page
    page.route("**/settings/notifications__push", lambda route: route.abort())
    page.get_by_role("switch", name="Push notifications").click()
    status = page.locator("#setting-notifications__push [data-setting-status]")
    expect(status).to_be_visible()
    expect(status).to_contain_text("not saved")
    expect(page.get_by_role("switch", name="Push notifications")).not_to_be_checked()
    expect(page.locator("#live-region")).to_contain_text("not saved")

    page.unroute("**/settings/notifications__push")
    page.route(
        "**/settings/notifications__digest",
        lambda route: route.fulfill(
            status=500,
            body='<span class="live-error">Something went wrong on our side.</span>',
            headers={"HX-Retarget": "#live-region", "HX-Reswap": "innerHTML"},
        ),
    )
    page.get_by_label("Summary email").select_option("daily")
    expect(page.locator("#live-region")).to_contain_text("Something went wrong")
    expect(page.locator("#notifications__digest")).to_have_value("weekly")
    digest_status = page.locator("#setting-notifications__digest [data-setting-status]")
    expect(digest_status).to_contain_text("Something went wrong")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_page_is_accessible_and_looks_finished(signed_in_page: Page, theme: str) -> None:
    page = signed_in_page
    if page.evaluate("document.documentElement.dataset.theme") != theme:
        with saved(page, "theme"):
            page.get_by_role("radio", name=theme.capitalize(), exact=True).check()
        expect(page.locator("html")).to_have_attribute("data-theme", theme)
    page.reload()
    assert background(page) == (DARK_BG if theme == "dark" else LIGHT_BG)
    assert_no_violations(page)

    # Keyboard: Tab from the dashboard link reaches the chosen theme, whose card shows a ring.
    page.get_by_role("link", name="Open the dashboard").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "theme"
    outline = page.evaluate(
        "getComputedStyle(document.activeElement.closest('label')).outlineStyle"
    )
    assert outline == "solid"
    page.evaluate("document.activeElement.blur()")
    path = screenshot(page, f"settings-{theme}")
    assert path.stat().st_size > 10_000


def test_narrow_screen_has_no_sideways_scroll(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, live_server.url, browser_user)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_no_violations(page)
    screenshot(page, "settings-narrow")
