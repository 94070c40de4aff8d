"""The settings page: no-script form posts, htmx field saves, and forged requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.preferences import registry, service
from tests.conftest import csrf_token

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
        return dict(service.get_settings(user_id).values)


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
    assert '<fieldset class="setting__fieldset"' in html and "<legend" in html
    assert '<optgroup label="Europe">' in html and '<option value="Europe/Berlin">' in html
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
        assert service.get_settings(user).choices == {"theme": "light"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"theme": "pink"}, "theme", "Must be one of: light, dark, system."),
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
        assert '<option selected value="Asia/Tokyo">' in html  # the person's input is kept
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
    assert 'id="theme-error"' in html and "Must be one of: light, dark, system." in html
    assert 'aria-describedby="theme-help theme-error"' in html
    assert 'checked class="choice-card__input" id="theme-2"' in html  # still "system"
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
