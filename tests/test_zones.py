"""Time zones by the names people know them by, and legacy names stored as canonical ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from babel import Locale
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale

from app.preferences import registry, validation, zones
from app.web import forms
from tests.conftest import csrf_token
from tests.test_import_export import document, post_import
from tests.test_settings_page import full_form, htmx_post, stored

# The zone layer does not depend on the database; the app's paths run on SQLite only.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

#: Zones as CLDR names them in each language: a region's time and its city, or the country.
LABELS = {
    ("fr", "Europe/Berlin"): "heure d\u2019Europe centrale (Berlin)",
    ("en", "Asia/Tokyo"): "Japan Time (Tokyo)",
    ("ja", "Asia/Tokyo"): "日本時間\uff08東京\uff09",
    ("ar", "Asia/Tokyo"): "توقيت اليابان (طوكيو)",
    ("de", "Africa/Cairo"): "Osteuropäische Zeit (Kairo)",
    ("en", "UTC"): "Coordinated Universal Time",
    ("ar", "UTC"): "التوقيت العالمي المنسق",
    # CLDR files Buenos Aires and Kolkata under their old ids; Babel alone finds neither.
    ("en", "America/Argentina/Buenos_Aires"): "Argentina Time (Buenos Aires)",
    ("ja", "Asia/Kolkata"): "インド標準時\uff08コルカタ\uff09",
    ("fr", "Pacific/Chatham"): "heure des îles Chatham",
}


@pytest.mark.parametrize(("locale", "zone"), list(LABELS))
def test_zones_are_named_as_people_know_them(locale: str, zone: str) -> None:
    assert zones.zone_label(zone, Locale.parse(locale)) == LABELS[locale, zone]


@pytest.mark.parametrize("locale", registry.shipped_locales())
def test_every_offered_zone_has_a_name_in_every_language(locale: str) -> None:
    reader = Locale.parse(locale)
    for zone in zones.canonical_time_zones():
        # Its own name or its country's, not just the last part of the IANA id.
        assert zones.zone_name(zone, reader), zone
        assert zones.zone_label(zone, reader), zone


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("US/Pacific", "America/Los_Angeles"),
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("Europe/Kiev", "Europe/Kyiv"),
        ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("Europe/Berlin", "Europe/Berlin"),
    ],
)
def test_validation_stores_a_legacy_name_as_the_canonical_one(alias: str, canonical: str) -> None:
    assert validation.validate({"timezone": alias}) == {"timezone": canonical}
    assert validation.validate_document({"timezone": alias}) == {"timezone": canonical}


@sqlite_only
def test_zone_options_are_built_once_per_language(app: Flask) -> None:
    hour = datetime(2026, 1, 15, 12, tzinfo=UTC)
    with app.test_request_context(), force_locale("ar"):
        first = forms._zone_choices("ar", hour)
        before = forms._zone_names.cache_info()
        # Another hour needs new offsets, not new names.
        forms._zone_choices("ar", hour.replace(hour=13))
        assert forms._zone_names.cache_info().hits == before.hits + 1
        assert forms._zone_names.cache_info().misses == before.misses
    kolkata = next(choice for choice in first if choice.value == "Asia/Kolkata")
    assert kolkata.label == "توقيت الهند (كالكتا) · UTC+05:30"
    assert kolkata.optgroup == "آسيا"
    # What the picker also matches: the country, English names, and legacy ids that a
    # browser may report as its zone.
    assert kolkata.render_kw["data-country"] == "الهند"
    assert "Kolkata" in kolkata.render_kw["data-also"]
    assert "Asia/Calcutta" in kolkata.render_kw["data-aliases"].split()
    utc = next(choice for choice in first if choice.value == "UTC")
    assert utc.optgroup == "مناطق أخرى"


@sqlite_only
def test_api_accepts_a_legacy_name_and_speaks_iana_ids(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    headers = {"X-CSRFToken": csrf_token(signed_in, "/settings")}
    response = signed_in.patch(
        "/api/user/settings",
        data=json.dumps({"timezone": "US/Pacific"}),
        content_type="application/merge-patch+json",
        headers=headers,
    )
    assert response.status_code == 200
    assert response.get_json()["timezone"] == "America/Los_Angeles"
    assert signed_in.get("/api/user/settings").get_json()["timezone"] == "America/Los_Angeles"


@sqlite_only
def test_form_and_import_accept_a_legacy_name(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    data = {**full_form(timezone="Asia/Calcutta"), "csrf_token": csrf_token(signed_in, "/settings")}
    assert signed_in.post("/settings", data=data).status_code == 303
    assert stored(app, user)["timezone"] == "Asia/Kolkata"

    assert htmx_post(signed_in, "timezone", {"timezone": "Europe/Kiev"}).status_code == 200
    assert stored(app, user)["timezone"] == "Europe/Kyiv"

    assert post_import(signed_in, document({"timezone": "US/Pacific"})).status_code == 200
    assert stored(app, user)["timezone"] == "America/Los_Angeles"


@sqlite_only
def test_rendered_zone_lists_are_kept_for_each_language(app: Flask) -> None:
    """Pages in two languages served in turn reuse one rendering of the list each."""
    widget = forms.TimeZoneField.widget
    pages: dict[str, str] = {}
    for locale in ("en", "ar", "en", "ar"):
        with app.test_request_context(), force_locale(locale):
            form = forms.SettingsForm.from_settings(registry.defaults())
            pages[locale] = str(form["timezone"]())
    assert {key[0] for key in widget._rendered} >= {"en", "ar"}
    assert "Coordinated Universal Time · UTC+00:00" in pages["en"]
    assert "التوقيت العالمي المنسق · UTC+00:00" in pages["ar"]
