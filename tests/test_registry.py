"""The registry's invariants, its validation, and the artefacts derived from it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import pytz
from flask import Flask

from app import create_app
from app.cli import PREFERENCES_DOC
from app.preferences import registry, schema, storage, validation, zones
from app.preferences.registry import PREFERENCES
from app.preferences.validation import ValidationError


@pytest.fixture(scope="module")
def ctx() -> Iterator[Flask]:
    """An app context for lazy strings; no database needed."""
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context():
        yield app


pytestmark = pytest.mark.usefixtures("ctx")


def test_every_preference_is_complete() -> None:
    keys = [pref.key for pref in PREFERENCES]
    assert len(keys) == len(set(keys))
    assert keys == [
        "theme",
        "locale",
        "timezone",
        "notifications.email",
        "notifications.push",
        "notifications.digest",
    ]
    for pref in PREFERENCES:
        assert str(pref.label) and str(pref.help)
        assert pref.check(pref.default) is None, pref.key
        if pref.type != "boolean":
            assert pref.allowed(), pref.key


def test_locales_are_english_plus_at_least_three() -> None:
    locales = registry.shipped_locales()
    assert locales[0] == "en"
    assert len(locales) >= 4
    assert registry.locale_name("de") == "Deutsch"
    assert registry.locale_name("ja") == "日本語"


def test_time_zones_are_the_pinned_ones_every_formatter_knows() -> None:
    known = zones.time_zones()
    assert "Europe/Berlin" in known and "UTC" in known
    assert list(known) == sorted(known)
    # In the host's zoneinfo, but not something Flask-Babel can format with.
    assert "Factory" not in known and "localtime" not in known
    assert set(known) == pytz.all_timezones_set


def test_fingerprint_ignores_the_hosts_zone_list(monkeypatch: pytest.MonkeyPatch) -> None:
    before = registry.fingerprint()
    caches = (registry.fingerprint, zones.time_zones, zones._time_zone_set)
    for cached in caches:
        cached.cache_clear()
    # Another host, or this one after an upgrade, with a different zone database.
    monkeypatch.setattr(pytz, "all_timezones_set", frozenset({"Europe/Berlin", "UTC"}))
    try:
        assert zones.time_zones() == ("Europe/Berlin", "UTC")
        assert registry.fingerprint() == before
    finally:
        monkeypatch.undo()
        for cached in caches:
            cached.cache_clear()


def test_defaults_are_flat_and_nest_for_the_api() -> None:
    assert registry.nest(registry.defaults()) == {
        "theme": "system",
        "locale": "en",
        "timezone": "UTC",
        "notifications": {"email": True, "push": False, "digest": "weekly"},
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("theme", "dark"),
        ("theme", "light"),
        ("locale", "fr"),
        ("timezone", "America/Argentina/Buenos_Aires"),
        ("notifications.email", False),
        ("notifications.push", True),
        ("notifications.digest", "daily"),
    ],
)
def test_valid_values_pass(key: str, value: object) -> None:
    assert validation.validate({key: value}) == {key: value}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("theme", 5, "Must be a string."),
        ("theme", "blue", "Must be one of: light, dark, system."),
        ("theme", None, "Must be a string."),
        ("locale", "xx", "Must be one of: en,"),
        ("timezone", "Mars/Olympus", 'Unknown time zone "Mars/Olympus"'),
        ("timezone", "x" * 10_000, "at most 64 characters"),
        ("notifications.email", "true", "Must be true or false."),
        ("notifications.email", 1, "Must be true or false."),
        ("notifications.push", float("nan"), "Must be a finite value."),
        ("notifications.push", float("inf"), "Must be a finite value."),
        ("notifications.digest", "hourly", "Must be one of: off, daily, weekly."),
        ("colour", "red", "Unknown setting."),
    ],
)
def test_invalid_values_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.validate({key: value})
    assert list(caught.value.errors) == [key]
    assert message in caught.value.errors[key][0]


def test_validation_reports_every_problem_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        validation.validate({"theme": "blue", "notifications.push": "yes", "locale": "de"})
    assert set(caught.value.errors) == {"theme", "notifications.push"}


def test_null_means_reset_only_when_allowed() -> None:
    assert validation.validate({"theme": None}, allow_null=True) == {"theme": None}


@pytest.mark.parametrize(
    ("document", "key", "message"),
    [
        ([], "", "must be a JSON object"),
        ("dark", "", "must be a JSON object"),
        ({"notifications": True}, "notifications", "Must be an object."),
        ({"notifications": {"sms": True}}, "notifications.sms", "Unknown setting."),
        ({"notifications.email": True}, "notifications.email", "Unknown setting."),
        ({"theme": {"name": "dark"}}, "theme", "Must be a single value"),
        ({"theme": ["dark"]}, "theme", "Must be a single value"),
        ({"notifications": {"a": {"b": {"c": {"d": {}}}}}}, "", "nested too deeply"),
        ({"k" * 5000: 1}, "k" * 64 + "…", "Unknown setting."),
    ],
)
def test_document_structure_errors(document: object, key: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.validate_document(document)
    assert key in caught.value.errors
    assert message in " ".join(caught.value.errors[key])


def test_document_null_group_resets_its_keys() -> None:
    cleaned = validation.validate_document({"notifications": None}, allow_null=True)
    assert cleaned == dict.fromkeys(
        ["notifications.email", "notifications.push", "notifications.digest"]
    )


def test_validate_keys_expands_groups_and_refuses_unknown() -> None:
    assert validation.validate_keys(["theme", "notifications", "theme"]) == [
        "theme",
        "notifications.email",
        "notifications.push",
        "notifications.digest",
    ]
    with pytest.raises(ValidationError) as caught:
        validation.validate_keys(["theme", "nope", 3])
    assert set(caught.value.errors) == {"nope", "3"}


def test_invalid_stored_values_read_as_defaults(caplog: pytest.LogCaptureFixture) -> None:
    stored = {"locale": "tlh", "timezone": "Asia/Calcutta_Old", "theme": "dark", "gone": 1}
    for _ in range(3):
        settings = storage.effective(stored)
    assert settings["locale"] == "en"
    assert settings["timezone"] == "UTC"
    assert settings["theme"] == "dark"
    warnings = [r for r in caplog.records if "no longer valid" in r.getMessage()]
    assert len(warnings) <= 2  # logged once per value per process, not per read


def test_version_zero_document_is_upgraded() -> None:
    old = {"theme": "dark", "notifications": True}
    assert storage.upgrade(old) == {
        "theme": "dark",
        "notifications.email": True,
        "notifications.push": True,
    }
    nested = {"notifications": {"digest": "daily"}}
    assert storage.upgrade(nested) == {"notifications.digest": "daily"}
    current = storage.stored_document({"theme": "light"})
    assert current == {"_v": 1, "theme": "light"}
    assert storage.upgrade(current) == {"theme": "light"}
    assert storage.upgrade(None) == {}


def test_fingerprint_is_stable() -> None:
    assert registry.fingerprint() == registry.fingerprint()
    assert len(registry.fingerprint()) == 10


def test_json_schema_lists_every_key_and_value() -> None:
    document = schema.document_schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    properties = document["properties"]
    for pref in PREFERENCES:
        node = (
            properties[pref.group]["properties"][pref.name] if pref.group else properties[pref.key]
        )
        assert node["default"] == pref.default
        if pref.type == "boolean":
            assert node["type"] == "boolean"
        else:
            assert node["enum"] == list(pref.allowed())
    json.dumps(document)


def test_partial_nullable_schema_allows_nulls() -> None:
    partial = schema.settings_schema(partial=True, nullable=True)
    assert "required" not in partial
    assert {"type": "null"} in partial["properties"]["notifications"]["anyOf"]


def test_committed_docs_match_the_registry() -> None:
    assert PREFERENCES_DOC.read_text() == schema.markdown_reference(), (
        "docs/preferences.md is out of date: run `flask preferences docs`"
    )
    for pref in PREFERENCES:
        assert f"`{pref.key}`" in PREFERENCES_DOC.read_text()
