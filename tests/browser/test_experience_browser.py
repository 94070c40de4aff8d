"""What a demanding person feels in the browser: no lost click, visible feedback, keyboard,
plain words, small screens, one way to show each thing. Headless Chromium throughout."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, Request, Route, expect
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.preferences import registry, zones
from app.preferences import snapshot as snapshots
from tests.browser.conftest import LiveServer, run_axe, save_settings, screenshot, sign_in

pytestmark = pytest.mark.browser


def stored(app: Flask, email: str) -> dict[str, Any]:
    """The effective settings of ``email`` as the service reads them now."""
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        db.session.rollback()
        assert user_id is not None
        return dict(snapshots.load_snapshot(user_id).settings.values)  # type: ignore[union-attr]


def wait_until(page: Page, condition: Callable[[], bool], timeout_ms: int = 5000) -> None:
    """Let the page run (and Playwright dispatch routes) until ``condition`` holds."""
    waited = 0
    while not condition():
        assert waited < timeout_ms, "timed out"
        page.wait_for_timeout(25)
        waited += 25


def assert_no_violations(page: Page) -> None:
    violations = run_axe(page)
    summary = [(v["id"], [node["target"] for node in v["nodes"]]) for v in violations]
    assert violations == [], summary


def posts_to(page: Page, path: str) -> list[Request]:
    """Every POST the page sends to ``path`` from now on."""
    sent: list[Request] = []
    page.on(
        "request", lambda r: sent.append(r) if r.method == "POST" and r.url.endswith(path) else None
    )
    return sent


# --- 1. the last choice always wins ---------------------------------------------------------


def test_a_choice_made_while_the_previous_save_runs_wins(
    signed_in_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    held: list[Route] = []
    page.route("**/settings/theme", lambda route: held.append(route))
    page.locator("#theme-0").check()  # Light, sent and held: a slow connection
    wait_until(page, lambda: len(held) == 1)
    page.locator("#theme-0").focus()
    page.keyboard.press("ArrowRight")  # Dark, while Light is on its way
    page.wait_for_timeout(300)
    page.keyboard.press("ArrowRight")  # System, while Light is still on its way
    expect(page.locator("html")).to_have_attribute("data-theme", "system")
    held.pop(0).continue_()
    # The newest choice follows the first as soon as it is answered; the middle one is skipped.
    wait_until(page, lambda: len(held) == 1)
    expect(page.locator("#theme-2")).to_be_checked()
    held.pop(0).continue_()
    expect(page.locator("#live-region")).to_have_text("Saved")
    wait_until(page, lambda: stored(live_app, browser_user)["theme"] == "system")
    page.wait_for_timeout(300)
    assert not held
    expect(page.locator("#theme-2")).to_be_checked()
    expect(page.locator("#theme-2")).to_be_focused()
    expect(page.locator("html")).to_have_attribute("data-theme", "system")


def test_quick_choices_in_a_select_end_on_the_last_one(
    signed_in_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    held: list[Route] = []
    page.route("**/settings/notifications__digest", lambda route: held.append(route))
    digest = page.get_by_label("Summary email")
    digest.select_option("daily")
    wait_until(page, lambda: len(held) == 1)
    digest.select_option("off")
    digest.select_option("weekly")
    digest.select_option("off")
    held.pop(0).continue_()
    # What follows goes through at once.
    wait_until(page, lambda: len(held) == 1)
    held.pop(0).continue_()
    wait_until(page, lambda: stored(live_app, browser_user)["notifications.digest"] == "off")
    page.wait_for_timeout(500)
    assert stored(live_app, browser_user)["notifications.digest"] == "off"
    expect(digest).to_have_value("off")


# --- 2. the time-zone picker -----------------------------------------------------------------


def test_time_zone_picker_searches_and_saves_only_on_a_pick(
    signed_in_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    sent = posts_to(page, "/settings/timezone")
    picker = page.get_by_role("combobox", name="Time zone")
    expect(picker).to_have_value("Coordinated Universal Time · UTC+00:00")
    picker.fill("Tokyo")
    listbox = page.get_by_role("listbox")
    expect(listbox.get_by_role("option").first).to_contain_text("Tokyo")
    expect(listbox.get_by_role("option").first).to_contain_text("Japan · UTC+09:00")
    screenshot(page, "zone-picker")
    picker.fill("japan")
    expect(listbox.get_by_role("option").first).to_contain_text("Tokyo")
    picker.fill("kolkata")
    expect(listbox.get_by_role("option")).to_have_count(1)
    picker.fill("new york")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Escape")
    expect(picker).to_have_value("Coordinated Universal Time · UTC+00:00")
    # Typing, arrows and Escape saved nothing.
    page.wait_for_timeout(300)
    assert sent == []
    picker.fill("tokyo")
    with page.expect_response(lambda r: r.url.endswith("/settings/timezone")):
        page.keyboard.press("Enter")
    assert len(sent) == 1
    assert stored(live_app, browser_user)["timezone"] == "Asia/Tokyo"
    expect(page.get_by_role("combobox", name="Time zone")).to_be_focused()
    expect(page.get_by_role("combobox", name="Time zone")).to_have_value(
        "Japan Time (Tokyo) · UTC+09:00"
    )
    expect(page.locator("#live-region")).to_have_text("Saved")
    # Legacy aliases are not offered at all.
    options = page.locator("#timezone option")
    values = set(options.evaluate_all("(all) => all.map((o) => o.value)"))
    assert "Asia/Kolkata" in values and "Asia/Calcutta" not in values
    assert "Turkey" not in values and "Etc/GMT+5" not in values
    assert len(values) == len(zones.canonical_time_zones())
    assert_no_violations(page)


def test_time_zone_without_script_is_a_plain_select(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, live_server.url, browser_user)
    select = page.get_by_label("Time zone")
    expect(select.locator("option[value='Asia/Tokyo']")).to_have_text(
        "Japan Time (Tokyo) · UTC+09:00"
    )
    select.select_option("Asia/Tokyo")
    with page.expect_navigation():
        page.get_by_role("button", name="Save settings").click()
    assert stored(live_app, browser_user)["timezone"] == "Asia/Tokyo"


# --- 3. signed out elsewhere -----------------------------------------------------------------


def sign_out_in_another_tab(context: BrowserContext, base_url: str) -> None:
    other = context.new_page()
    other.goto(f"{base_url}/settings")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(f"{base_url}/login")
    other.close()


def test_signed_out_elsewhere_the_settings_page_says_so(
    signed_in_page: Page, live_server: LiveServer
) -> None:
    page = signed_in_page
    sign_out_in_another_tab(page.context, live_server.url)
    page.get_by_role("switch", name="Push notifications").click()
    banner = page.get_by_role("alert").filter(has_text="signed out")
    expect(banner).to_contain_text("You have been signed out — sign in again.")
    link = banner.get_by_role("link", name="Sign in and return to this page")
    expect(link).to_have_attribute("href", "/login?next=/settings")
    expect(page.get_by_role("switch", name="Push notifications")).not_to_be_checked()
    assert "security token" not in page.content()
    link.click()
    page.wait_for_url("**/login?next=/settings")


def test_signed_out_elsewhere_the_dashboard_says_so(
    signed_in_page: Page, live_server: LiveServer, browser_user: str
) -> None:
    page = signed_in_page
    page.goto(f"{live_server.url}/dashboard")
    expect(page.locator("#dashboard")).to_have_attribute("data-state", "ok")
    sign_out_in_another_tab(page.context, live_server.url)
    page.locator("#theme-picker").get_by_role("radio", name="Dark").click()
    banner = page.locator("#dashboard-signed-out")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("You have been signed out — sign in again.")
    expect(banner.get_by_role("link")).to_have_attribute("href", "/login?next=/dashboard")
    screenshot(page, "dashboard-signed-out")
    expect(page.locator("#dashboard-retry")).to_be_hidden()
    # The header's account part: the email, "Change password" and "Sign out".
    expect(page.get_by_role("navigation").get_by_text(browser_user, exact=True)).to_be_hidden()
    expect(page.locator("html")).not_to_have_attribute("data-theme", "dark")


# --- 4. "Saved", visibly ----------------------------------------------------------------------


def test_a_save_says_saved_beside_the_control(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(viewport={"width": 375, "height": 700}).new_page()
    sign_in(page, live_server.url, browser_user)
    switch = page.get_by_role("switch", name="Push notifications")
    switch.scroll_into_view_if_needed()
    switch.click()
    status = page.locator("#setting-notifications__push").get_by_text("Saved", exact=True)
    expect(status).to_be_visible()
    expect(status).to_contain_text("Saved")
    expect(status).to_be_in_viewport()
    expect(page.locator("#live-region")).to_have_text("Saved")
    expect(status).to_be_hidden(timeout=8000)


# --- 5. the keyboard keeps its place --------------------------------------------------------


def test_enter_on_a_switch_does_not_submit_the_form(signed_in_page: Page) -> None:
    page = signed_in_page
    page.evaluate("window.samePage = true")
    switch = page.get_by_role("switch", name="Email notifications")
    switch.focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert page.evaluate("window.samePage === true")
    expect(page.locator("#flashes")).to_have_count(0)
    expect(switch).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#live-region")).to_have_text("Saved")
    expect(switch).to_be_focused()


def test_language_change_keeps_focus_and_announces_after_load(signed_in_page: Page) -> None:
    page = signed_in_page
    with page.expect_navigation():
        page.get_by_label("Language").select_option("de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#locale")).to_be_focused()
    expect(page.locator("#live-region")).to_have_text("Gespeichert")


def test_import_preview_moves_focus_to_what_it_says(signed_in_page: Page) -> None:
    page = signed_in_page
    document = {"format": "user-settings", "version": 1, "settings": {"theme": "dark"}}
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "s.json",
                "mimeType": "application/json",
                "buffer": json.dumps(document).encode(),
            }
        ],
    )
    page.get_by_role("button", name="Preview import").click()
    expect(page.get_by_role("heading", name="Preview of the import")).to_be_focused()


# --- 7. import problems in plain words ---------------------------------------------------------

BAD_FILES = [
    ("big.json", b'{"a": "' + b"x" * 1_000_000 + b'"}', "The file is larger than 64 KB"),
    (
        "package.json",
        json.dumps({"name": "x", "version": "1.0.0", "main": "index.js"}).encode(),
        "This isn't a settings file exported from this app.",
    ),
    (
        "broken.json",
        b'{"format": "user-settings", nope',
        "This isn't a settings file exported from this app.",
    ),
    (
        "image.png",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        "This isn't a settings file exported from this app.",
    ),
]


@pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])
@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_import_problems_are_one_plain_sentence_inline(
    live_server: LiveServer,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    script: bool,
    name: str,
    content: bytes,
    message: str,
) -> None:
    page = new_context(java_script_enabled=script).new_page()
    sign_in(page, live_server.url, browser_user)
    page.set_input_files(
        "#import-file",
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": content}],
    )
    page.get_by_role("button", name="Preview import").click()
    problem = page.locator("#transfer").get_by_role("alert")
    expect(problem).to_be_visible()
    expect(problem.locator("#import-errors-title")).to_have_text(
        message
        + (
            ""
            if message.endswith(".")
            else ": a settings file exported from this app is much smaller."
        )
    )
    expect(page.locator("h1")).to_have_text("Settings")
    if name == "package.json":
        problem.get_by_text("What exactly is wrong").click()
        problem.scroll_into_view_if_needed()
        screenshot(page, f"import-problem-{'script' if script else 'no-script'}")
    for jargon in ("Unknown member", "Expecting property name", "UTF-8", "413"):
        assert jargon not in problem.locator("#import-errors-title").inner_text()


# --- 9. small screens --------------------------------------------------------------------------

PAGES = ["/settings", "/dashboard", "/settings/history", "/account/password"]


@pytest.mark.parametrize("locale", registry.shipped_locales())
def test_no_page_scrolls_sideways_at_any_width(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    locale: str,
) -> None:
    save_settings(
        live_app,
        browser_user,
        {"locale": locale, "theme": "dark"},
        {"timezone": "America/Argentina/Buenos_Aires"},
    )
    context = new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url, browser_user)
    for width in (320, 375, 768, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for path in PAGES:
            page.goto(live_server.url + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} at {width}px in {locale} scrolls {overflow}px sideways"
    page.set_viewport_size({"width": 375, "height": 900})
    page.goto(live_server.url + "/settings/history")
    screenshot(page, f"history-narrow-{locale}")
    # The pages of a visitor who is not signed in, in the browser's language.
    visitor = new_context(locale=locale).new_page()
    for width in (320, 375, 768, 1280):
        visitor.set_viewport_size({"width": width, "height": 900})
        for path in ("/login", "/register"):
            visitor.goto(live_server.url + path)
            expect(visitor.locator("html")).to_have_attribute("lang", locale)
            overflow = visitor.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} at {width}px in {locale} scrolls {overflow}px sideways"


def test_history_rows_stack_on_a_narrow_screen(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> None:
    zones = ("Europe/Berlin", "Asia/Tokyo", "America/Argentina/Buenos_Aires")
    save_settings(live_app, browser_user, *({"timezone": zone} for zone in zones), source="page")
    page = new_context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, live_server.url, browser_user)
    page.goto(f"{live_server.url}/settings/history")
    cell = page.locator("tbody tr").first.locator("td[data-label='After']")
    expect(cell).to_be_in_viewport()
    box = cell.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
    assert (
        page.evaluate("getComputedStyle(document.querySelector('tbody tr td'), '::before').content")
        == '"When"'
    )


# --- 10. one way to show each thing ------------------------------------------------------------


def contrast(one: str, other: str) -> float:
    """WCAG contrast ratio of two ``rgb(...)`` colours."""

    def luminance(colour: str) -> float:
        parts = [
            float(x) / 255 for x in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]
        ]
        linear = [p / 12.92 if p <= 0.04045 else ((p + 0.055) / 1.055) ** 2.4 for p in parts]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    a, b = sorted((luminance(one), luminance(other)), reverse=True)
    return (a + 0.05) / (b + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_control_borders_stand_out_three_to_one(
    signed_in_page: Page, live_app: Flask, browser_user: str, theme: str
) -> None:
    page = signed_in_page
    save_settings(live_app, browser_user, {"theme": theme})
    page.reload()
    for selector in ("#locale", "#notifications__digest", "#timezone-search"):
        border, background = page.locator(selector).evaluate(
            "(e) => [getComputedStyle(e).borderTopColor,"
            " getComputedStyle(e.closest('section')).backgroundColor]"
        )
        assert contrast(border, background) >= 3, (selector, theme, border, background)


def test_dashboard_shows_the_same_theme_control_and_names(
    signed_in_page: Page, live_server: LiveServer, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    theme_cards = page.get_by_role("group", name="Theme", exact=True).locator("label")
    expect(theme_cards).to_have_count(3)
    settings_cards = theme_cards.all_inner_texts()
    page.goto(f"{live_server.url}/dashboard")
    expect(page.locator("#dashboard")).to_have_attribute("data-state", "ok")
    assert "Appearance" not in page.content()
    expect(page.locator("#theme-picker legend")).to_have_text("Theme")
    cards = page.locator("#theme-picker").get_by_role("group", name="Theme", exact=True)
    cards = cards.locator("label")
    assert cards.all_inner_texts() == settings_cards
    with page.expect_response(
        lambda r: r.url.endswith("/api/user/settings") and r.request.method == "PATCH"
    ):
        page.locator("#theme-picker").get_by_role("radio", name="Dark").click()
    page.goto(f"{live_server.url}/settings/history")
    expect(page.locator("tbody tr").first).to_contain_text("Dashboard")
    expect(page.locator("h1, h2").filter(has_text="Recent changes")).to_have_count(1)


def test_history_page_reaches_older_changes(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> None:
    themes = ({"theme": ("dark", "light")[index % 2]} for index in range(25))
    save_settings(live_app, browser_user, *themes, source="cli")
    page = new_context().new_page()
    sign_in(page, live_server.url, browser_user)
    page.goto(f"{live_server.url}/settings/history")
    expect(page.locator("tbody tr")).to_have_count(10)
    page.get_by_role("link", name="Older changes").click()
    expect(page.locator("tbody tr")).to_have_count(10)
    page.get_by_role("link", name="Older changes").click()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.get_by_role("link", name="Older changes")).to_have_count(0)
