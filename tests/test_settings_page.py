"""The settings page: no-script form posts, htmx field saves, and forged requests."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from sqlalchemy import update

from app.extensions import db
from app.models import User
from app.preferences import registry, service, zones
from app.preferences import snapshot as snapshots
from app.preferences.cache import entries as cache
from tests.conftest import AuthActions, csrf_token

HTMX = {"HX-Request": "true"}


def full_form(**overrides: Any) -> dict[str, Any]:
    """What the page posts without script: every field, checkboxes only when on."""
    data: dict[str, Any] = {
        "theme": "system",
        "locale": "en",
        "timezone": "UTC",
        "notifications__email": "y",
        "notifications__digest": "weekly",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def stored(app: Flask, user_id: int) -> dict[str, Any]:
    """The user's effective settings as the service reads them."""
    with app.app_context():
        return dict(snapshots.get_settings(user_id).values)


def htmx_post(client: FlaskClient, field: str, data: dict[str, Any]) -> Any:
    """Post one field the way the page's htmx does: CSRF in the header."""
    headers = {**HTMX, "X-CSRFToken": csrf_token(client, "/settings")}
    return client.post(f"/settings/{field}", data=data, headers=headers)


def test_page_shows_every_preference(signed_in: FlaskClient) -> None:
    response = signed_in.get("/settings")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    for pref in registry.PREFERENCES:
        assert f'name="{pref.field_name}"' in html
        assert str(pref.label) in html
    assert 'method="post"' in html and 'action="/settings"' in html
    assert 'role="switch"' in html
    assert re.search(r"<fieldset\b[^>]*>\s*<legend\b", html)
    assert '<optgroup label="Europe">' in html
    # Zones as people know them, with their offset now; only canonical zones, no aliases.
    assert re.search(
        r' value="Europe/Berlin">Central European Time \(Berlin\) · UTC\+0[12]:00</option>', html
    )
    assert 'value="Asia/Kolkata"' in html and 'value="Asia/Calcutta"' not in html
    assert 'value="Turkey"' not in html and 'value="Etc/GMT+5"' not in html
    assert '<option lang="de" value="de">Deutsch</option>' in html
    assert "Never changed" in html
    assert 'href="/dashboard"' in html
    assert "data-zone-suggestion hidden" in html


def test_form_post_saves_and_redirects_with_flash(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    data = full_form(
        theme="dark",
        timezone="Europe/Berlin",
        notifications__email=None,
        notifications__push="y",
        notifications__digest="daily",
        csrf_token=csrf_token(signed_in, "/settings"),
    )
    response = signed_in.post("/settings", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/settings")
    values = stored(app, user)
    assert values["theme"] == "dark"
    assert values["timezone"] == "Europe/Berlin"
    assert values["notifications.email"] is False
    assert values["notifications.push"] is True
    assert values["notifications.digest"] == "daily"
    html = signed_in.get("/settings").get_data(as_text=True)
    assert "Saved" in html and "Last saved" in html
    assert 'data-theme="dark"' in html


def test_form_post_stores_only_what_changed(app: Flask, signed_in: FlaskClient, user: int) -> None:
    data = full_form(theme="light", csrf_token=csrf_token(signed_in, "/settings"))
    assert signed_in.post("/settings", data=data).status_code == 303
    with app.app_context():
        assert snapshots.get_settings(user).choices == {"theme": "light"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"theme": "pink"}, "theme", "Must be one of: Light, Dark, or System."),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"locale": "xx"}, "locale", "Must be one of:"),
        ({"notifications__digest": "hourly"}, "notifications__digest", "Must be one of:"),
        ({"notifications__push": "maybe"}, "notifications__push", "Must be true or false."),
        ({"theme": None}, "theme", "Must be a string."),
    ],
)
def test_form_post_rejects_bad_value_and_keeps_input(
    app: Flask,
    signed_in: FlaskClient,
    user: int,
    overrides: dict[str, Any],
    field: str,
    message: str,
) -> None:
    before = stored(app, user)
    data = full_form(
        theme="dark", timezone="Asia/Tokyo", csrf_token=csrf_token(signed_in, "/settings")
    )
    data.update({k: v for k, v in overrides.items() if v is not None})
    for key in (k for k, v in overrides.items() if v is None):
        data.pop(key)
    response = signed_in.post("/settings", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert f'id="{field}-error"' in html
    assert f"{field}-error" in html.split(f'id="{field}-error"')[0]  # tied by aria-describedby
    if field != "timezone":
        assert ' selected value="Asia/Tokyo">' in html  # the person's input is kept
    assert stored(app, user) == before


def test_form_post_with_unknown_field_changes_nothing(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    before = stored(app, user)
    data = full_form(theme="dark", is_admin="y", csrf_token=csrf_token(signed_in, "/settings"))
    response = signed_in.post("/settings", data=data)
    assert response.status_code == 422
    assert "There is no setting called is_admin." in response.get_data(as_text=True)
    assert stored(app, user) == before


def test_form_post_without_csrf_changes_nothing(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    before = stored(app, user)
    response = signed_in.post("/settings", data=full_form(theme="dark"))
    assert response.status_code == 403
    assert "security token" in response.get_data(as_text=True)
    assert stored(app, user) == before


def test_htmx_field_save_returns_fragment(app: Flask, signed_in: FlaskClient, user: int) -> None:
    response = htmx_post(signed_in, "notifications__digest", {"notifications__digest": "off"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith("{#") is False
    assert 'id="setting-notifications__digest"' in html
    assert '<option selected value="off">' in html
    assert 'hx-swap-oob="innerHTML:#live-region">Saved</div>' in html
    assert "HX-Request" in response.headers["Vary"]
    event = json.loads(response.headers["HX-Trigger"])
    assert event == {"settings-saved": {"notifications.digest": "off"}}
    assert stored(app, user)["notifications.digest"] == "off"


def test_htmx_switch_off_saves_false(app: Flask, signed_in: FlaskClient, user: int) -> None:
    response = htmx_post(signed_in, "notifications__email", {})
    assert response.status_code == 200
    assert stored(app, user)["notifications.email"] is False
    response = htmx_post(signed_in, "notifications__email", {"notifications__email": "y"})
    assert 'role="switch"' in response.get_data(as_text=True)
    assert stored(app, user)["notifications.email"] is True


def test_htmx_theme_change_triggers_restyle(signed_in: FlaskClient) -> None:
    response = htmx_post(signed_in, "theme", {"theme": "dark"})
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"]) == {"settings-saved": {"theme": "dark"}}
    assert "HX-Refresh" not in response.headers


def test_htmx_locale_change_refreshes_page(app: Flask, signed_in: FlaskClient, user: int) -> None:
    response = htmx_post(signed_in, "locale", {"locale": "de"})
    assert response.status_code == 200
    assert response.headers["HX-Refresh"] == "true"
    assert stored(app, user)["locale"] == "de"
    html = signed_in.get("/settings").get_data(as_text=True)
    assert '<html lang="de"' in html


def test_htmx_bad_value_shows_error_and_server_value(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    before = stored(app, user)
    response = htmx_post(signed_in, "theme", {"theme": "neon"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html
    assert 'id="theme-error"' in html and "Must be one of: Light, Dark, or System." in html
    assert 'aria-describedby="theme-help theme-error"' in html
    system = re.search(r'<input\b[^>]*\bid="theme-2"[^>]*>', html)
    assert system is not None and re.search(r"\schecked[\s>]", system.group(0))  # still "system"
    assert "Theme was not saved" in html.split("hx-swap-oob")[1]
    assert "HX-Trigger" not in response.headers
    assert stored(app, user) == before


def test_htmx_unknown_field_is_400_in_live_region(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    before = stored(app, user)
    response = htmx_post(signed_in, "is_admin", {"is_admin": "y"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#live-region"
    assert "There is no such setting." in response.get_data(as_text=True)
    assert stored(app, user) == before


def test_htmx_extra_fields_are_refused(app: Flask, signed_in: FlaskClient, user: int) -> None:
    before = stored(app, user)
    response = htmx_post(signed_in, "theme", {"theme": "dark", "locale": "de"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#live-region"
    assert stored(app, user) == before


def test_htmx_without_csrf_changes_nothing(app: Flask, signed_in: FlaskClient, user: int) -> None:
    before = stored(app, user)
    response = signed_in.post("/settings/theme", data={"theme": "dark"}, headers=HTMX)
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#live-region"
    assert "security token" in response.get_data(as_text=True)
    assert stored(app, user) == before


def test_field_post_without_htmx_redirects(app: Flask, signed_in: FlaskClient, user: int) -> None:
    token = csrf_token(signed_in, "/settings")
    response = signed_in.post("/settings/theme", data={"theme": "light", "csrf_token": token})
    assert response.status_code == 303
    assert stored(app, user)["theme"] == "light"
    response = signed_in.post("/settings/theme", data={"theme": "neon", "csrf_token": token})
    assert response.status_code == 422
    assert "<html" in response.get_data(as_text=True)
    assert stored(app, user)["theme"] == "light"


def test_last_saved_in_users_zone(app: Flask, signed_in: FlaskClient, user: int) -> None:
    with app.app_context():
        service.update_settings(user, {"timezone": "Asia/Tokyo"})
    response = signed_in.get("/settings/last-saved", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    assert "Last saved" in html and "<time datetime=" in html


def test_settings_need_sign_in(client: FlaskClient) -> None:
    response = client.get("/settings")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# --- a page loaded before another window saved -----------------------------------------------

SHOWN = re.compile(r'name="shown" type="hidden" value="([^"]*)"')


def loaded_page(client: FlaskClient) -> dict[str, Any]:
    """What a page loaded now would post back without script, as rendered: every field."""
    html = client.get("/settings").get_data(as_text=True)
    shown = SHOWN.search(html)
    assert shown, "the form carries no record of what it showed"
    values = json.loads(unescape(shown.group(1)))
    data: dict[str, Any] = {
        pref.field_name: values[pref.key] for pref in registry.PREFERENCES if pref.type != "boolean"
    }
    data.update(
        {
            pref.field_name: "y"
            for pref in registry.PREFERENCES
            if pref.type == "boolean" and values[pref.key]
        }
    )
    data["shown"] = unescape(shown.group(1))
    data["csrf_token"] = csrf_token(client, "/settings")
    return data


def api_patch(client: FlaskClient, document: dict[str, Any]) -> None:
    token = csrf_token(client, "/settings")
    response = client.patch("/api/user/settings", json=document, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def other_window(app: Flask, user: int) -> FlaskClient:
    """A second session of the same user: another window, browser or device."""
    client = app.test_client()
    assert AuthActions(client).login().status_code == 303
    return client


def test_stale_page_saves_only_what_it_changed(
    app: Flask, signed_in: FlaskClient, other_window: FlaskClient, user: int
) -> None:
    page = loaded_page(signed_in)
    api_patch(other_window, {"theme": "dark", "timezone": "Asia/Tokyo"})
    page["notifications__digest"] = "daily"
    response = signed_in.post("/settings", data=page)
    assert response.status_code == 303
    assert stored(app, user) == {
        **registry.defaults(),
        "theme": "dark",
        "timezone": "Asia/Tokyo",
        "notifications.digest": "daily",
    }


def test_stale_page_changing_a_key_changed_elsewhere_saves_nothing(
    app: Flask, signed_in: FlaskClient, other_window: FlaskClient, user: int
) -> None:
    page = loaded_page(signed_in)
    # The other window saves through the page without script, as a person would.
    other = loaded_page(other_window)
    other["theme"] = "dark"
    assert other_window.post("/settings", data=other).status_code == 303
    page["theme"] = "light"
    page["notifications__digest"] = "off"
    response = signed_in.post("/settings", data=page)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed in another window" in html
    assert "Changed elsewhere meanwhile; it is now Dark." in html
    # The form shows what is stored now, so saving it again keeps the other window's choice.
    assert re.search(r'value="dark"[^>]*checked|checked[^>]*value="dark"', html)
    after = stored(app, user)
    assert after["theme"] == "dark" and after["notifications.digest"] == "weekly"
    retry = loaded_page(signed_in)
    retry["notifications__digest"] = "off"
    assert signed_in.post("/settings", data=retry).status_code == 303
    assert stored(app, user)["theme"] == "dark"
    assert stored(app, user)["notifications.digest"] == "off"


def test_stale_page_choosing_what_elsewhere_chose_is_no_conflict(
    app: Flask, signed_in: FlaskClient, other_window: FlaskClient, user: int
) -> None:
    page = loaded_page(signed_in)
    api_patch(other_window, {"theme": "dark"})
    page["theme"] = "dark"
    page["locale"] = "fr"
    assert signed_in.post("/settings", data=page).status_code == 303
    assert (stored(app, user)["theme"], stored(app, user)["locale"]) == ("dark", "fr")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_allowed_zone_renders_every_page(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    """No zone the app accepts (and offers) breaks a page that formats a time in it."""
    for index, zone in enumerate(zones.time_zones()):
        with app.app_context():
            service.update_settings(user, {"timezone": zone})
        response = signed_in.get("/settings/last-saved", headers=HTMX)
        assert response.status_code == 200, zone
        if index % 25 == 0:
            for path in ("/settings", "/dashboard", "/settings/history"):
                assert signed_in.get(path).status_code == 200, (zone, path)


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posixrules"])
def test_zones_no_formatter_knows_are_refused(
    app: Flask, signed_in: FlaskClient, user: int, zone: str
) -> None:
    token = csrf_token(signed_in, "/settings")
    response = signed_in.patch(
        "/api/user/settings", json={"timezone": zone}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 422
    assert "timezone" in response.get_json()["errors"]
    page = htmx_post(signed_in, "timezone", {"timezone": zone})
    assert page.status_code == 422
    assert f'<option value="{zone}"' not in signed_in.get("/settings").get_data(as_text=True)
    assert stored(app, user)["timezone"] == "UTC"


# --- pages kept per process ---------------------------------------------------------------


def test_a_kept_page_carries_each_sessions_own_token(
    app: Flask, signed_in: FlaskClient, other_window: FlaskClient, user: int
) -> None:
    """The second view of an unchanged page is a kept copy, with this session's token."""
    first = csrf_token(signed_in, "/settings")
    second_html = other_window.get("/settings").get_data(as_text=True)
    assert first not in second_html
    second = csrf_token(other_window, "/settings")
    saved = other_window.post(
        "/settings/notifications__digest",
        data={"notifications__digest": "daily"},
        headers={**HTMX, "X-CSRFToken": second},
    )
    assert saved.status_code == 200
    assert stored(app, user)["notifications.digest"] == "daily"
    # The first session's token is still its own, and still works.
    assert htmx_post(signed_in, "notifications__digest", {"notifications__digest": "off"})
    assert stored(app, user)["notifications.digest"] == "off"


def test_a_kept_page_speaks_the_users_language_whatever_the_browser_asks(
    app: Flask, signed_in: FlaskClient, other_window: FlaskClient, user: int
) -> None:
    """Kept copies are told apart by the browser's languages too; the user's choice wins."""
    views = [(signed_in, "fr"), (other_window, "ja,en;q=0.5"), (signed_in, "fr"), (signed_in, None)]

    def languages() -> set[str]:
        found = set()
        for client, browser in views:
            headers = {"Accept-Language": browser} if browser else {}
            page = client.get("/settings", headers=headers).get_data(as_text=True)
            found.update(re.findall(r'<html lang="([a-z]+)"', page))
        return found

    assert languages() == {"en"}
    assert htmx_post(signed_in, "locale", {"locale": "de"}).status_code == 200
    assert languages() == {"de"}
    assert stored(app, user)["locale"] == "de"


def test_a_row_changed_behind_the_apps_back_shows_on_the_next_page(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    """An operator's change by hand keeps the row's version; the page must still show it."""
    assert 'data-theme="system"' in signed_in.get("/settings").get_data(as_text=True)
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == user).values(preferences={"_v": 1, "theme": "dark"})
        )
        db.session.commit()
        cache.invalidate(user)
    assert 'data-theme="dark"' in signed_in.get("/settings").get_data(as_text=True)


def test_a_saved_field_is_kept_by_value_and_language(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    """A field saved again with a value seen before is not rendered again, and is the same."""
    rendered: list[str] = []

    def count(_app: Flask, template: Any, **_: Any) -> None:
        rendered.append(template.name)

    def save(value: str) -> tuple[str, str]:
        response = htmx_post(signed_in, "notifications__digest", {"notifications__digest": value})
        assert response.status_code == 200
        assert "HX-Request" in response.headers["Vary"]
        event = json.loads(response.headers["HX-Trigger"])
        assert event == {"settings-saved": {"notifications.digest": value}}
        assert stored(app, user)["notifications.digest"] == value
        return response.get_data(as_text=True), response.headers["Content-Type"]

    with template_rendered.connected_to(count, app):
        daily, daily_type = save("daily")
        weekly, _ = save("weekly")
        fields_rendered = rendered.count("settings/_field.html")
        again, again_type = save("daily")
        assert rendered.count("settings/_field.html") == fields_rendered
    assert (again, again_type) == (daily, daily_type)
    assert '<option selected value="daily">' in again and again != weekly
    assert htmx_post(signed_in, "locale", {"locale": "de"}).headers["HX-Refresh"] == "true"
    german, _ = save("daily")
    assert "Gespeichert" in german and german != daily


def test_a_message_waiting_from_a_save_is_shown_not_a_kept_page(
    signed_in: FlaskClient,
) -> None:
    signed_in.get("/settings")
    token = csrf_token(signed_in, "/settings")
    saved = signed_in.post(
        "/settings/notifications__digest",
        data={"notifications__digest": "daily", "csrf_token": token},
    )
    assert saved.status_code == 303
    assert "Saved" in signed_in.get("/settings").get_data(as_text=True)
