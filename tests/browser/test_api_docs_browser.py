"""The API reference at /api/docs in headless Chromium: Swagger UI renders every operation of
the document, signed out, under the app-wide CSP, with nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from app.api import openapi
from tests.browser.conftest import LiveServer, screenshot

pytestmark = pytest.mark.browser


def test_reference_renders_every_operation_without_errors(
    live_server: LiveServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context().new_page()
    problems: list[str] = []
    # CSP violations are reported on the console as errors; script failures as page errors.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((live_server.url, "data:")) else elsewhere.append(r.url),
    )

    page.goto(f"{live_server.url}/api/docs")
    expect(page.get_by_role("heading", name="User settings API")).to_be_visible()
    document = openapi.document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            block = page.locator(f".opblock-{method}", has_text=operation["summary"])
            expect(block.locator(".opblock-summary-path")).to_have_text(path)
    expect(page.locator(".opblock")).to_have_count(9)
    # Open one: its parameters, responses and example render too.
    page.get_by_text("The current settings", exact=True).click()
    expect(page.get_by_text("If-None-Match", exact=True).first).to_be_visible()
    expect(page.locator(".response-col_status", has_text="304")).to_be_visible()
    screenshot(page, "api-docs")
    assert problems == []
    assert elsewhere == []


def test_dashboard_links_to_the_reference(signed_in_page: Page, live_server: LiveServer) -> None:
    signed_in_page.goto(f"{live_server.url}/dashboard")
    signed_in_page.get_by_role("link", name="API reference").click()
    signed_in_page.wait_for_url(f"{live_server.url}/api/docs")
    expect(signed_in_page.get_by_role("heading", name="User settings API")).to_be_visible()
