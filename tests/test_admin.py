"""The read-only admin pages: who may see them, what they show, and the audit log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.models import AdminView, User
from app.preferences import service
from app.preferences import snapshot as snapshots
from tests.conftest import AuthActions, csrf_token


def view_count(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(AdminView)) or 0
        db.session.rollback()
        return count


@pytest.fixture
def admin(make_user: Any) -> int:
    """The id of an admin, ``admin@example.com``."""
    return int(make_user("admin@example.com", is_admin=True))


@pytest.fixture
def as_admin(client: FlaskClient, auth: AuthActions, admin: int) -> FlaskClient:
    assert auth.login("admin@example.com").status_code == 303
    return client


ADMIN_PATHS = ["/admin/users", "/admin/users?q=x&page=2", "/admin/audit", "/admin/users/{id}"]


@pytest.mark.parametrize("path", [*ADMIN_PATHS, "/admin/users/999999"])
def test_non_admins_get_the_same_403_everywhere(
    app: Flask, signed_in: FlaskClient, user: int, path: str
) -> None:
    response = signed_in.get(path.format(id=user))
    assert response.status_code == 403
    assert "You are not allowed to do that." in response.get_data(as_text=True)
    assert view_count(app) == 0


def test_non_admins_learn_nothing_from_ids(signed_in: FlaskClient, user: int) -> None:
    existing = signed_in.get(f"/admin/users/{user}")
    missing = signed_in.get("/admin/users/424242")
    assert existing.status_code == missing.status_code == 403
    assert existing.get_data() == missing.get_data()


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path.format(id=1))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_nav_shows_admin_link_only_to_admins(
    app: Flask, client: FlaskClient, auth: AuthActions, admin: int, make_user: Any
) -> None:
    make_user("plain@example.com")
    auth.login("plain@example.com")
    assert 'href="/admin/users"' not in client.get("/settings").get_data(as_text=True)
    auth.logout()
    auth.login("admin@example.com")
    assert 'href="/admin/users"' in client.get("/settings").get_data(as_text=True)


@pytest.mark.parametrize(
    ("locale", "area", "role", "column"),
    [
        ("en", "Admin", "Admin", "Admin"),
        ("de", "Verwaltung", "Administrator", "Administrator"),
        ("ja", "管理", "管理者", "管理者"),
        ("ar", "الإدارة", "مسؤول", "المسؤول"),
    ],
)
def test_admin_means_the_area_the_role_or_the_person_as_each_language_says(
    app: Flask, as_admin: FlaskClient, admin: int, locale: str, area: str, role: str, column: str
) -> None:
    """One English word, three meanings: languages that tell them apart get their own words."""
    with app.app_context():
        service.update_settings(admin, {"locale": locale}, source="page")
    users = as_admin.get("/admin/users").get_data(as_text=True)
    assert f'aria-current="page">{area}</a>' in users
    assert f" · {role}</td>" in users
    as_admin.get(f"/admin/users/{admin}")
    assert f'<th scope="col">{column}</th>' in as_admin.get("/admin/audit").get_data(as_text=True)


def test_user_search_is_case_insensitive_and_paginated(
    as_admin: FlaskClient, make_user: Any
) -> None:
    for number in range(30):
        make_user(f"Person{number:02d}@Example.com")
    make_user("someone@else.org")
    html = as_admin.get("/admin/users?q=PERSON").get_data(as_text=True)
    assert "30 users found" in html
    assert "person00@example.com" in html and "person24@example.com" in html
    assert "person25@example.com" not in html and "someone@else.org" not in html
    assert "Page 1 of 2" in html and 'href="/admin/users?page=2&amp;q=PERSON"' in html
    html = as_admin.get("/admin/users?q=PERSON&page=2").get_data(as_text=True)
    assert "person25@example.com" in html and "person00@example.com" not in html
    # Wildcards are matched literally.
    assert "0 users found" in as_admin.get("/admin/users?q=%25").get_data(as_text=True)
    html = as_admin.get("/admin/users?page=zz").get_data(as_text=True)
    assert "32 users found" in html


def test_user_page_shows_settings_and_history_and_is_audited(
    app: Flask, as_admin: FlaskClient, admin: int, make_user: Any
) -> None:
    person = make_user("person@example.com")
    with app.app_context():
        service.update_settings(person, {"theme": "dark"}, source="api")
        service.update_settings(person, {"notifications.digest": "daily"}, source="page")
    response = as_admin.get(f"/admin/users/{person}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "person@example.com" in html
    assert "Dark" in html and "Daily" in html and "Settings page" in html and "API" in html
    # Read-only: no form that could change anything.
    assert "<form" not in html.split("</header>", 1)[1]
    with app.app_context():
        views = db.session.execute(select(AdminView.admin_id, AdminView.viewed_user_id)).all()
        db.session.rollback()
    assert [tuple(view) for view in views] == [(admin, person)]
    as_admin.get(f"/admin/users/{person}")
    assert view_count(app) == 2
    audit = as_admin.get("/admin/audit").get_data(as_text=True)
    assert audit.count("admin@example.com</td>") == 2
    assert "person@example.com" in audit


def test_user_page_pages_through_long_histories(
    app: Flask, as_admin: FlaskClient, make_user: Any
) -> None:
    person = make_user("person@example.com")
    with app.app_context():
        for number in range(30):
            service.update_settings(person, {"theme": "dark" if number % 2 else "light"})
    html = as_admin.get(f"/admin/users/{person}").get_data(as_text=True)
    assert "Older changes" not in html
    with app.app_context():
        for number in range(30):
            service.update_settings(person, {"theme": "dark" if number % 2 else "light"})
    html = as_admin.get(f"/admin/users/{person}").get_data(as_text=True)
    assert "Older changes" in html
    older = html.split("before=", 1)[1].split('"', 1)[0]
    html = as_admin.get(f"/admin/users/{person}?before={older}").get_data(as_text=True)
    # History header and its last ten rows; audit header and this page's three views.
    assert html.count("<tr>") == 1 + 10 + 1 + 3


def test_admin_gets_404_for_a_missing_user_and_nothing_is_audited(
    app: Flask, as_admin: FlaskClient
) -> None:
    assert as_admin.get("/admin/users/424242").status_code == 404
    assert view_count(app) == 0


def test_admin_pages_issue_no_writes_besides_the_audit(
    app: Flask, as_admin: FlaskClient, make_user: Any
) -> None:
    person = make_user("person@example.com")
    with app.app_context():
        before = db.session.execute(select(User.preferences, User.version)).all()
        db.session.rollback()
    as_admin.get(f"/admin/users/{person}")
    with app.app_context():
        assert db.session.execute(select(User.preferences, User.version)).all() == before


def test_cli_creates_promotes_and_demotes_admins(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, auth: AuthActions
) -> None:
    result = runner.invoke(
        args=["user", "create", "--admin", "boss@example.com", "--password", "long enough pw"]
    )
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.com" in result.output
    result = runner.invoke(
        args=["user", "create", "staff@example.com", "--password", "long enough pw"]
    )
    assert "Created user staff@example.com" in result.output
    auth.login("staff@example.com", "long enough pw")
    assert client.get("/admin/users").status_code == 403
    # Promotion reaches the open session on its next request (the cached snapshot changes).
    result = runner.invoke(args=["user", "promote", "Staff@Example.com"])
    assert result.exit_code == 0 and "is now an admin" in result.output
    assert client.get("/admin/users").status_code == 200
    result = runner.invoke(args=["user", "demote", "staff@example.com"])
    assert result.exit_code == 0 and "is no longer an admin" in result.output
    assert client.get("/admin/users").status_code == 403
    assert runner.invoke(args=["user", "promote", "nobody@example.com"]).exit_code != 0
    with app.app_context():
        flags = dict(db.session.execute(select(User.email, User.is_admin)).all())
    assert flags == {"boss@example.com": True, "staff@example.com": False}


def test_admin_flag_is_cached_without_sql(app: Flask, as_admin: FlaskClient, admin: int) -> None:
    with app.app_context():
        snapshot = snapshots.get_snapshot(admin)
        assert snapshot is not None and snapshot.is_admin
        # An entry in an earlier release's shape is not taken for this one's: it is
        # dropped and the row read instead (snapshot.get_snapshot).
        earlier = json.dumps(
            {"id": admin, "email": "boss@example.com", "active": True, "auth": 1, "version": 1}
        )
        with pytest.raises((ValueError, KeyError, TypeError)):
            snapshots.Snapshot.from_json(earlier)
    assert as_admin.get("/admin/users").status_code == 200


def test_admin_api_writes_are_not_possible(as_admin: FlaskClient) -> None:
    """There is no admin API; writes to admin pages are simply not routed."""
    token = csrf_token(as_admin, "/admin/users")
    response = as_admin.post("/admin/users", data={"csrf_token": token})
    assert response.status_code == 405
