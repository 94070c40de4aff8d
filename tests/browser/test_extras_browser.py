"""History, import preview and the admin pages in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from app.auth import service as auth_service
from app.extensions import db
from app.models import User
from app.preferences import service
from tests.browser.conftest import LiveServer, run_axe, screenshot, sign_in

pytestmark = pytest.mark.browser


def assert_no_violations(page: Page) -> None:
    """axe-core finds nothing on the page."""
    violations = run_axe(page)
    summary = [(v["id"], [node["target"] for node in v["nodes"]]) for v in violations]
    assert violations == [], summary


def stored(app: Flask, email: str) -> dict[str, object]:
    with app.app_context():
        value = db.session.scalar(select(User.preferences).where(User.email == email))
        db.session.rollback()
        return dict(value or {})


def test_history_list_updates_after_a_change(signed_in_page: Page) -> None:
    page = signed_in_page
    history = page.locator("#history")
    expect(history).to_contain_text("No changes yet.")
    with page.expect_response(lambda r: r.url.endswith("/settings/history")):
        page.get_by_role("radio", name="Dark").click()
    expect(history.locator("tbody tr")).to_have_count(1)
    expect(history.locator("tbody tr").first).to_contain_text("Theme")
    expect(history.locator("tbody tr").first).to_contain_text("Dark")
    expect(history.locator("tbody tr").first).to_contain_text("Settings page")
    page.select_option("select[name=notifications__digest]", "daily")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history.locator("tbody tr").first).to_contain_text("Summary email")
    assert_no_violations(page)


def test_import_preview_and_confirm(
    signed_in_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    document = {
        "format": "user-settings",
        "version": 1,
        "settings": {"theme": "dark", "notifications": {"push": True}},
    }
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "settings.json",
                "mimeType": "application/json",
                "buffer": json.dumps(document).encode(),
            }
        ],
    )
    page.get_by_role("button", name="Preview import").click()
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("Default (System) → Dark")
    expect(preview).to_contain_text("Default (Off) → On")
    # The preview was swapped in place: still the settings page, nothing stored yet.
    assert page.url.endswith("/settings")
    assert stored(live_app, browser_user) == {}
    assert_no_violations(page)
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator("#flashes")).to_contain_text("Imported: 2 settings changed.")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert stored(live_app, browser_user) == {"_v": 1, "theme": "dark", "notifications.push": True}
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(page.locator("#history")).to_contain_text("Import")


def test_import_shows_problems_without_changing_anything(
    signed_in_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = signed_in_page
    page.set_input_files(
        "#import-file",
        files=[{"name": "bad.json", "mimeType": "application/json", "buffer": b"{nope"}],
    )
    page.get_by_role("button", name="Preview import").click()
    expect(page.locator("#transfer").get_by_role("alert")).to_contain_text(
        "The file is not valid JSON"
    )
    assert stored(live_app, browser_user) == {}


def test_import_preview_without_script(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, live_server.url, browser_user)
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "settings.json",
                "mimeType": "application/json",
                "buffer": json.dumps(
                    {"format": "user-settings", "version": 0, "settings": {"theme": "light"}}
                ).encode(),
            }
        ],
    )
    page.get_by_role("button", name="Preview import").click()
    expect(page.locator("#import-preview")).to_contain_text("Default (System) → Light")
    page.get_by_role("button", name="Confirm import").click()
    page.wait_for_url(f"{live_server.url}/settings")
    assert stored(live_app, browser_user) == {"_v": 1, "theme": "light"}
    page.get_by_role("link", name="Show recent changes").click()
    expect(page.locator("#history tbody tr")).to_have_count(1)


def test_admin_pages(
    live_server: LiveServer, live_app: Flask, new_context: Callable[..., BrowserContext]
) -> None:
    with live_app.app_context():
        auth_service.create_user("boss@example.com", "correct horse battery", is_admin=True)
        for number in range(3):
            person = auth_service.create_user(f"person{number}@example.com", "x" * 12)
            service.update_settings(person.id, {"theme": "dark"}, source="api")
    page = new_context().new_page()
    sign_in(page, live_server.url, "boss@example.com")
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url(f"{live_server.url}/admin/users")
    page.fill("#admin-q", "PERSON")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#admin-count")).to_have_text("3 users found")
    assert_no_violations(page)
    screenshot(page, "admin-users")
    page.get_by_role("link", name="person1@example.com").click()
    expect(page.locator("h1")).to_have_text("person1@example.com")
    expect(page.get_by_role("table", name="Change history")).to_contain_text("API")
    assert_no_violations(page)
    page.get_by_role("link", name="All users").click()
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_no_violations(page)
