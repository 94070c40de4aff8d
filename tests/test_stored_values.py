"""Rows written straight into the database, as old releases and other tools leave them.

Whatever a row holds, every page, fragment and API read of its user answers 200 with the
defaults in place of what cannot be used, never shows stored markup unescaped, and logs
each bad value once rather than on every request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.extensions import db
from app.preferences import registry, storage
from app.preferences.cache import entries as cache
from tests.conftest import csrf_token

MARKUP = "<script>alert(1)</script>"

#: Documents no release of this app would write; each reads as the defaults.
BAD_DOCUMENTS: dict[str, Any] = {
    "wrong types": {
        "_v": 1,
        "theme": 5,
        "timezone": 3.5,
        "notifications.email": "yes",
        "notifications.push": 1,
        "notifications.digest": ["daily"],
    },
    "unknown choices": {"_v": 1, "theme": "purple", "notifications.digest": "hourly"},
    "unknown zone": {"_v": 1, "timezone": "America/Atlantis"},
    "zone pytz lacks": {"_v": 1, "timezone": "Factory"},
    "markup": {
        "_v": 1,
        "theme": MARKUP,
        "timezone": f'"><img src=x onerror=alert(1)>{MARKUP}',
        "notifications.digest": MARKUP,
    },
    "unknown keys": {"_v": 1, "colour": MARKUP, "notifications.sms": True, MARKUP: 1},
    "nested where a value belongs": {"_v": 1, "theme": {"dark": True}},
    "old format with markup": {"notifications": MARKUP, "theme": [MARKUP]},
    "a list": [1, 2, MARKUP],
    "a string": MARKUP,
    "a number": 42,
    "json null": None,
    "future storage version": {"_v": 99, "theme": "dark"},
    "version that is not a number": {"_v": "1", "theme": "dark"},
}

#: Reads of the signed-in user's settings, pages and fragments alike.
HTMX = {"HX-Request": "true"}
READS: list[tuple[str, dict[str, str]]] = [
    ("/settings", {}),
    ("/settings/last-saved", HTMX),
    ("/settings/history", {}),
    ("/settings/history", HTMX),
    ("/dashboard", {}),
    ("/api/user/settings", {}),
    ("/api/user/settings/export", {}),
    ("/api/user/settings/history", {}),
    ("/api/user/settings/schema", {}),
    ("/api/openapi.json", {}),
]


def store_raw(app: Flask, user_id: int, document: Any) -> None:
    """Write ``document`` into ``users.preferences`` with plain SQL, then drop the entry."""
    with app.app_context():
        statement = (
            "UPDATE users SET preferences = CAST(:doc AS JSONB) WHERE id = :id"
            if db.engine.dialect.name == "postgresql"
            else "UPDATE users SET preferences = :doc WHERE id = :id"
        )
        db.session.execute(text(statement), {"doc": json.dumps(document), "id": user_id})
        db.session.commit()
        cache.invalidate(user_id)


def registry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == storage.log.name and record.levelno == logging.WARNING
    ]


@pytest.fixture(autouse=True)
def forget_reported_values() -> None:
    """Each test sees the once-per-process warnings afresh."""
    storage._reported.clear()


@pytest.mark.parametrize("locale", [*registry.shipped_locales(), "xx"])
def test_every_read_survives_any_stored_document(
    app: Flask,
    signed_in: FlaskClient,
    user: int,
    locale: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    for name, document in BAD_DOCUMENTS.items():
        shown_locale = "en"
        if isinstance(document, dict) and document.get("_v") == 1:
            document = {**document, "locale": locale}
            shown_locale = locale if locale in registry.shipped_locales() else "en"
        store_raw(app, user, document)
        for path, headers in READS:
            response = signed_in.get(path, headers=headers)
            body = response.get_data(as_text=True)
            assert response.status_code == 200, (name, path, body[:500])
            assert MARKUP not in body, (name, path)
            assert "onerror=alert" not in body.replace("onerror=alert(1)&gt;", ""), (name, path)
            if not path.startswith("/api/") and not headers:
                assert f'lang="{shown_locale}"' in body, (name, path)
                assert 'data-theme="system"' in body, (name, path)
        settings = signed_in.get("/api/user/settings").get_json()
        assert settings["theme"] == "system", name
        assert settings["timezone"] == "UTC", name
        assert settings["notifications"] == {"email": True, "push": False, "digest": "weekly"}
        assert settings["locale"] == shown_locale, name


def test_each_bad_value_is_logged_once_not_per_request(
    app: Flask, signed_in: FlaskClient, user: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store_raw(app, user, {"_v": 1, "locale": "xx", "theme": MARKUP})
    for _ in range(3):
        for path, headers in READS:
            assert signed_in.get(path, headers=headers).status_code == 200
        store_raw(app, user, {"_v": 1, "locale": "xx", "theme": MARKUP})
    warnings = registry_warnings(caplog)
    assert len([w for w in warnings if "'xx'" in w]) == 1, warnings
    assert len([w for w in warnings if "alert(1)" in w]) == 1, warnings


@pytest.mark.parametrize("name", ["markup", "a list", "future storage version"])
def test_writes_work_over_a_bad_document(
    app: Flask, signed_in: FlaskClient, user: int, name: str
) -> None:
    store_raw(app, user, BAD_DOCUMENTS[name])
    token = csrf_token(signed_in, "/settings")
    field = signed_in.post(
        "/settings/theme", data={"theme": "dark"}, headers={**HTMX, "X-CSRFToken": token}
    )
    assert field.status_code == 200, field.get_data(as_text=True)
    api = signed_in.patch(
        "/api/user/settings",
        json={"notifications": {"digest": "daily"}},
        headers={"X-CSRFToken": token},
    )
    assert api.status_code == 200, api.get_data(as_text=True)
    body = api.get_json()
    assert (body["theme"], body["notifications"]["digest"]) == ("dark", "daily")
    assert signed_in.get("/settings").status_code == 200
