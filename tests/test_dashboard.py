"""The dashboard shell: who may see it, what it carries for its script, and what it must not."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.preferences import service
from tests.conftest import count_sql

URL = "/dashboard"


class Page(HTMLParser):
    """The parts of a page these tests look at: scripts, styles, links, data attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script = False
        self.style_attributes: list[str] = []
        self.style_elements = 0
        self.stylesheets: list[str | None] = []
        self.links: list[str | None] = []
        self.dashboard: dict[str, str | None] = {}
        self.messages: set[str] = set()
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "style" in found:
            self.style_attributes.append(tag)
        if tag == "script":
            self.scripts.append(found)
            self._in_script = True
        elif tag == "style":
            self.style_elements += 1
        elif tag == "link" and found.get("rel") == "stylesheet":
            self.stylesheets.append(found.get("href"))
        elif tag == "a":
            self.links.append(found.get("href"))
        elif found.get("id") == "dashboard":
            self.dashboard = found
        if "data-message" in found:
            self.messages.add(str(found["data-message"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def get_page(client: FlaskClient, url: str = URL) -> Page:
    """GET ``url``, expect 200, and parse it."""
    response = client.get(url)
    assert response.status_code == 200
    return Page(response.get_data(as_text=True))


def test_signed_in_user_gets_the_dashboard(signed_in: FlaskClient) -> None:
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>Dashboard</h1>" in html
    assert 'data-theme="system"' in html
    # It carries a user's data and a CSRF token: no shared cache may keep it.
    assert response.headers["Cache-Control"] == "no-store"


def test_anonymous_user_is_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get(URL)
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]
    assert "next=/dashboard" in response.headers["Location"]


def test_no_inline_scripts_or_styles(signed_in: FlaskClient) -> None:
    page = get_page(signed_in)
    assert page.scripts, "the page loads no scripts"
    for script in page.scripts:
        assert script.get("src"), f"inline script: {script}"
    assert not page.inline_script
    assert page.style_attributes == []
    assert page.style_elements == 0


def test_loads_its_module_sync_and_stylesheet(signed_in: FlaskClient) -> None:
    page = get_page(signed_in)
    modules = [s["src"] for s in page.scripts if s.get("type") == "module"]
    assert "/static/js/dashboard.js" in modules
    assert "/static/js/sync.js" in modules
    assert "/static/css/dashboard.css" in page.stylesheets
    for path in ("js/dashboard.js", "js/sync.js", "js/api.js", "css/dashboard.css"):
        response = signed_in.get(f"/static/{path}")
        response.close()  # static files are streamed; an open one would warn
        assert response.status_code == 200


def test_links_to_settings_and_is_in_the_navigation(signed_in: FlaskClient) -> None:
    html = signed_in.get(URL).get_data(as_text=True)
    page = Page(html)
    assert "/settings" in page.links
    assert '<a href="/dashboard" aria-current="page">' in html


def test_settings_page_links_to_the_dashboard_and_loads_sync(signed_in: FlaskClient) -> None:
    page = get_page(signed_in, "/settings")
    assert "/dashboard" in page.links
    assert "/static/js/sync.js" in [s.get("src") for s in page.scripts]


def test_sync_is_not_loaded_for_anonymous_pages(client: FlaskClient) -> None:
    page = get_page(client, "/login")
    assert "/static/js/sync.js" not in [s.get("src") for s in page.scripts]


def test_initial_settings_and_etag_match_the_api(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark", "notifications.push": True})
    page = get_page(signed_in)
    api = signed_in.get("/api/user/settings")
    assert json.loads(str(page.dashboard["data-settings"])) == api.get_json()
    assert page.dashboard["data-settings-etag"] == api.headers["ETag"]


def test_renders_the_settings_without_waiting_for_the_script(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    with app.app_context():
        service.update_settings(
            user,
            {
                "theme": "dark",
                "locale": "ja",
                "timezone": "Asia/Tokyo",
                "notifications.digest": "daily",
            },
        )
    html = signed_in.get(URL).get_data(as_text=True)
    assert 'data-theme="dark"' in html
    # The settings page's theme control, with the stored theme chosen.
    assert re.search(r'<input[^>]* checked[^>]*value="dark">', html)
    # The zone as the settings page names it, in the user's language.
    assert re.search('data-key="timezone">日本時間\uff08東京\uff09 · UTC\\+09:00<', html)
    assert re.search(r'data-key="locale">日本語<', html)
    assert 'lang="ja"' in html


def test_labels_cover_every_choice(signed_in: FlaskClient) -> None:
    labels: dict[str, Any] = json.loads(str(get_page(signed_in).dashboard["data-labels"]))
    assert set(labels["theme"]) == {"light", "dark", "system"}
    assert set(labels["notifications.digest"]) == {"off", "daily", "weekly"}
    assert {"en", "de", "fr", "ja"} <= set(labels["locale"])
    assert labels["locale"]["de"] == "Deutsch"


def test_script_strings_come_from_the_page(signed_in: FlaskClient) -> None:
    page = get_page(signed_in)
    expected = {"loading", "ok", "saving", "offline", "error", "saved", "save-failed", "conflict"}
    assert expected <= page.messages
    # Each one the script asks for is rendered, so none is English hard-coded in JavaScript.
    with open("static/js/dashboard.js", encoding="utf-8") as source:
        asked = set(re.findall(r'text\(\s*"([a-z-]+)"', source.read()))
    assert asked <= page.messages, asked - page.messages


@pytest.mark.parametrize(("seconds", "expected"), [(None, "10000"), (2, "2000"), (0.5, "500")])
def test_poll_interval_comes_from_config(
    app: Flask, signed_in: FlaskClient, seconds: float | None, expected: str
) -> None:
    if seconds is not None:
        app.config["DASHBOARD_POLL_SECONDS"] = seconds
    assert get_page(signed_in).dashboard["data-poll-ms"] == expected


def test_warm_dashboard_issues_no_sql(app: Flask, signed_in: FlaskClient) -> None:
    assert signed_in.get(URL).status_code == 200  # warms the cache
    with count_sql(app) as statements:
        assert signed_in.get(URL).status_code == 200
    assert statements == []
