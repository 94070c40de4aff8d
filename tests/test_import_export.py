"""Export and import: round trips, dry runs, bad files refused whole, the page's preview."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import PreferenceChange, User
from app.preferences import service
from tests.conftest import AuthActions, csrf_token

HTMX = {"HX-Request": "true"}


def stored(app: Flask, user_id: int) -> dict[str, Any]:
    """The user's preferences column exactly as stored."""
    with app.app_context():
        value = db.session.scalar(select(User.preferences).where(User.id == user_id))
        db.session.rollback()
        return dict(value or {})


def history(app: Flask, user_id: int) -> list[tuple[str, Any, Any, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(
                PreferenceChange.key,
                PreferenceChange.old,
                PreferenceChange.new,
                PreferenceChange.source,
            )
            .where(PreferenceChange.user_id == user_id)
            .order_by(PreferenceChange.id)
        ).all()
        db.session.rollback()
        return [tuple(row) for row in rows]


def document(settings: dict[str, Any], version: int = 1, **extra: Any) -> dict[str, Any]:
    return {"format": "user-settings", "version": version, "settings": settings, **extra}


def post_import(client: FlaskClient, body: Any, query: str = "", **kwargs: Any) -> Any:
    headers = {"X-CSRFToken": csrf_token(client, "/settings"), **kwargs.pop("headers", {})}
    if isinstance(body, bytes | str):
        return client.post(
            f"/api/user/settings/import{query}", data=body, headers=headers, **kwargs
        )
    return client.post(f"/api/user/settings/import{query}", json=body, headers=headers)


def test_export_downloads_the_explicit_choices(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark", "notifications.digest": "daily"})
    response = signed_in.get("/api/user/settings/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="settings-')
    body = response.get_json()
    assert body["format"] == "user-settings" and body["version"] == 1
    assert body["exported_at"].endswith("Z")
    assert body["settings"] == {"theme": "dark", "notifications": {"digest": "daily"}}


def test_export_then_import_round_trips_on_a_fresh_user(
    app: Flask, client: FlaskClient, auth: AuthActions, make_user: Any
) -> None:
    first = make_user("first@example.com")
    second = make_user("second@example.com")
    with app.app_context():
        service.update_settings(
            first,
            {
                "theme": "light",
                "locale": "fr",
                "timezone": "America/Lima",
                "notifications.email": False,
                "notifications.push": True,
            },
        )
    auth.login("first@example.com")
    exported = client.get("/api/user/settings/export").get_data()
    auth.logout()
    auth.login("second@example.com")
    response = post_import(client, exported, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["dry_run"] is False
    assert {item["key"] for item in body["changed"]} == {
        "theme",
        "locale",
        "timezone",
        "notifications.email",
        "notifications.push",
    }
    assert body["settings"]["locale"] == "fr"
    assert stored(app, second) == stored(app, first)
    assert {row[3] for row in history(app, second)} == {"import"}
    assert len(history(app, second)) == 5


def test_import_replaces_choices_and_reports_what_changed(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark", "timezone": "Asia/Tokyo"})
    response = post_import(signed_in, document({"theme": "light", "notifications": {"push": True}}))
    assert response.status_code == 200
    assert response.get_json()["changed"] == [
        {"key": "notifications.push", "old": None, "new": True},
        {"key": "theme", "old": "dark", "new": "light"},
        {"key": "timezone", "old": "Asia/Tokyo", "new": None},
    ]
    assert stored(app, user) == {"_v": 1, "theme": "light", "notifications.push": True}
    assert history(app, user)[-3:] == [
        ("notifications.push", None, True, "import"),
        ("theme", "dark", "light", "import"),
        ("timezone", "Asia/Tokyo", None, "import"),
    ]
    # The same file again changes nothing and records nothing.
    again = post_import(signed_in, document({"theme": "light", "notifications": {"push": True}}))
    assert again.get_json()["changed"] == []
    assert len(history(app, user)) == 5


@pytest.mark.parametrize("flag", ["1", "true"])
def test_dry_run_reports_and_changes_nothing(
    app: Flask, signed_in: FlaskClient, user: int, flag: str
) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark"})
    before = stored(app, user)
    response = post_import(signed_in, document({"locale": "de"}), f"?dry_run={flag}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["dry_run"] is True
    assert body["changed"] == [
        {"key": "locale", "old": None, "new": "de"},
        {"key": "theme", "old": "dark", "new": None},
    ]
    assert body["settings"]["locale"] == "de" and body["settings"]["theme"] == "system"
    assert stored(app, user) == before
    assert len(history(app, user)) == 1


def test_version_0_documents_are_upgraded(app: Flask, signed_in: FlaskClient, user: int) -> None:
    response = post_import(signed_in, document({"notifications": True, "theme": "dark"}, version=0))
    assert response.status_code == 200, response.get_json()
    assert stored(app, user) == {
        "_v": 1,
        "theme": "dark",
        "notifications.email": True,
        "notifications.push": True,
    }


TOO_BIG = json.dumps(document({"theme": "dark"}, exported_at="x" * (64 * 1024)))


@pytest.mark.parametrize(
    ("body", "status", "message", "errors"),
    [
        (b"theme=dark", 415, "The body must be JSON", None),
        ("{not json", 400, "The body is not valid JSON", None),
        (document({"theme": "dark"}, version=7), 422, "Unknown version 7", ["version"]),
        (document({"theme": "dark"}, version="1"), 422, "Unknown version", ["version"]),
        (
            {"format": "something-else", "version": 1, "settings": {}},
            422,
            'format: This is not an exported settings document: "format" must be',
            ["format"],
        ),
        (TOO_BIG, 413, "at most 64 KiB", None),
        (
            document({"theme": "dark", "colour": "red", "notifications": {"sms": True}}),
            422,
            "colour: Unknown setting.",
            ["colour", "notifications.sms"],
        ),
        (
            document({"theme": "neon", "notifications": {"email": "yes"}}),
            422,
            "theme: Must be one of: light, dark, system.",
            ["theme", "notifications.email"],
        ),
        (document({"theme.x": "dark"}, version=0), 422, "theme.x: Unknown setting.", ["theme.x"]),
        ([1, 2], 422, "must hold a JSON object", [""]),
        ({**document({}), "extra": 1}, 422, "extra: Unknown member.", ["extra"]),
    ],
)
@pytest.mark.parametrize("query", ["", "?dry_run=1"])
def test_bad_imports_are_refused_whole(
    app: Flask,
    signed_in: FlaskClient,
    user: int,
    body: Any,
    status: int,
    message: str,
    errors: list[str] | None,
    query: str,
) -> None:
    with app.app_context():
        service.update_settings(user, {"timezone": "Europe/Paris"})
    before = stored(app, user)
    headers = {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif isinstance(body, str):
        headers["Content-Type"] = "application/json"
    response = post_import(signed_in, body, query, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert message in problem["detail"]
    if errors is not None:
        assert sorted(problem["errors"]) == sorted(errors)
    assert stored(app, user) == before
    assert len(history(app, user)) == 1


def test_import_needs_the_csrf_header(app: Flask, signed_in: FlaskClient, user: int) -> None:
    response = signed_in.post("/api/user/settings/import", json=document({"theme": "dark"}))
    assert response.status_code == 403
    assert stored(app, user) == {}


def test_import_refuses_a_bad_dry_run_flag(signed_in: FlaskClient) -> None:
    response = post_import(signed_in, document({}), "?dry_run=maybe")
    assert response.status_code == 400
    assert "dry_run" in response.get_json()["detail"]


def test_export_and_import_need_a_session(client: FlaskClient) -> None:
    assert client.get("/api/user/settings/export").status_code == 401
    assert client.post("/api/user/settings/import", json=document({})).status_code == 401


def test_other_writes_keep_the_16_kib_limit(signed_in: FlaskClient) -> None:
    headers = {"X-CSRFToken": csrf_token(signed_in, "/settings")}
    body = json.dumps({"theme": "dark", "x": "y" * (20 * 1024)})
    response = signed_in.put(
        "/api/user/settings", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


# --- the settings page -----------------------------------------------------------------------


def upload(client: FlaskClient, content: bytes, headers: dict[str, str] | None = None) -> Any:
    data = {
        "csrf_token": csrf_token(client, "/settings"),
        "file": (io.BytesIO(content), "settings.json", "application/json"),
    }
    return client.post(
        "/settings/import", data=data, content_type="multipart/form-data", headers=headers or {}
    )


def test_page_offers_download_and_upload(signed_in: FlaskClient) -> None:
    html = signed_in.get("/settings").get_data(as_text=True)
    assert 'href="/api/user/settings/export"' in html
    assert 'enctype="multipart/form-data"' in html and 'type="file"' in html


def test_page_import_previews_then_applies_on_confirm(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    content = json.dumps(document({"theme": "dark", "notifications": {"push": True}})).encode()
    response = upload(signed_in, content)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in html and "Preview of the import" in html
    text = re.sub(r"<[^>]+>", "", html)
    assert "Theme: Default (System) → Dark" in text
    assert "Push notifications: Default (Off) → On" in text
    assert stored(app, user) == {}
    assert 'name="document"' in html and "Confirm import" in html
    data = {"csrf_token": csrf_token(signed_in, "/settings"), "document": content.decode()}
    response = signed_in.post("/settings/import/confirm", data=data)
    assert response.status_code == 303
    assert stored(app, user) == {"_v": 1, "theme": "dark", "notifications.push": True}
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "Imported: 2 settings changed." in page
    assert {row[3] for row in history(app, user)} == {"import"}


def test_page_import_with_htmx_swaps_the_card(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    content = json.dumps(document({"theme": "light"})).encode()
    response = upload(signed_in, content, HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith("<section")
    assert "Importing would change 1 setting." in html
    assert stored(app, user) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "The file is not valid JSON"),
        (json.dumps(document({}, version=3)).encode(), "Unknown version 3"),
        (json.dumps(document({"colour": "red"})).encode(), "colour: Unknown setting."),
        (TOO_BIG.encode(), "The file is larger than 64 KB"),
        (b"", "Choose a file to import."),
    ],
)
def test_page_import_refuses_bad_files(
    app: Flask, signed_in: FlaskClient, user: int, content: bytes, message: str
) -> None:
    if content:
        response = upload(signed_in, content)
    else:
        data = {"csrf_token": csrf_token(signed_in, "/settings")}
        response = signed_in.post("/settings/import", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert "Nothing was changed." in html
    assert 'name="document"' not in html
    assert stored(app, user) == {}


def test_page_confirm_refuses_a_tampered_document(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    data = {
        "csrf_token": csrf_token(signed_in, "/settings"),
        "document": json.dumps(document({"theme": "neon"})),
    }
    response = signed_in.post("/settings/import/confirm", data=data)
    assert response.status_code == 422
    assert "theme: Must be one of" in response.get_data(as_text=True)
    assert stored(app, user) == {}


def test_page_confirm_of_an_unchanged_document(app: Flask, signed_in: FlaskClient) -> None:
    data = {"csrf_token": csrf_token(signed_in, "/settings"), "document": json.dumps(document({}))}
    response = signed_in.post("/settings/import/confirm", data=data, follow_redirects=True)
    assert "Imported: nothing needed to change." in response.get_data(as_text=True)


def test_page_import_confirm_after_a_change_elsewhere_imports_nothing(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    content = json.dumps(document({"theme": "dark"})).encode()
    preview = upload(signed_in, content).get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', preview)
    assert version, "the confirm form does not say what the preview was made against"
    other_window = app.test_client()
    assert AuthActions(other_window).login().status_code == 303
    token = csrf_token(other_window, "/settings")
    response = other_window.patch(
        "/api/user/settings", json={"locale": "fr"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
    data = {
        "csrf_token": csrf_token(signed_in, "/settings"),
        "document": content.decode(),
        "version": version.group(1),
    }
    response = signed_in.post("/settings/import/confirm", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert stored(app, user) == {"_v": 1, "locale": "fr"}
    # The new preview says what importing does now (the language would go back too).
    assert "nothing was imported" in html.lower() or "rien" in html.lower()
    assert 'name="version"' in html
    again = re.search(r'name="version" value="(\d+)"', html)
    assert again and again.group(1) != version.group(1)
    data["version"] = again.group(1)
    data["csrf_token"] = csrf_token(signed_in, "/settings")
    assert signed_in.post("/settings/import/confirm", data=data).status_code == 303
    assert stored(app, user) == {"_v": 1, "theme": "dark"}
