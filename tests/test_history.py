"""Change history: every path of change recorded once, in its transaction; paging; pruning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from app.extensions import db
from app.models import PreferenceChange, User, utcnow
from app.preferences import service, writes
from app.preferences import snapshot as snapshots
from tests.conftest import csrf_token
from tests.test_settings_page import full_form, htmx_post


def changes(app: Flask, user_id: int) -> list[tuple[str, Any, Any, str]]:
    """The user's history rows, oldest first, as (key, old, new, source)."""
    with app.app_context():
        rows = db.session.scalars(
            select(PreferenceChange)
            .where(PreferenceChange.user_id == user_id)
            .order_by(PreferenceChange.id)
        ).all()
        result = [(row.key, row.old, row.new, row.source) for row in rows]
        db.session.rollback()
        return result


def api_headers(client: FlaskClient) -> dict[str, str]:
    return {"X-CSRFToken": csrf_token(client, "/settings")}


def test_page_without_script_records_each_changed_key(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    data = full_form(
        theme="dark", timezone="Europe/Berlin", csrf_token=csrf_token(signed_in, "/settings")
    )
    assert signed_in.post("/settings", data=data).status_code == 303
    assert sorted(changes(app, user)) == [
        ("theme", None, "dark", "page"),
        ("timezone", None, "Europe/Berlin", "page"),
    ]
    # The same form again changes nothing, so records nothing.
    assert signed_in.post("/settings", data=data).status_code == 303
    assert len(changes(app, user)) == 2


def test_page_with_htmx_records_the_field(app: Flask, signed_in: FlaskClient, user: int) -> None:
    assert htmx_post(signed_in, "theme", {"theme": "light"}).status_code == 200
    assert htmx_post(signed_in, "theme", {"theme": "dark"}).status_code == 200
    assert changes(app, user) == [
        ("theme", None, "light", "page"),
        ("theme", "light", "dark", "page"),
    ]


def test_api_put_patch_and_reset_record_their_source(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    headers = api_headers(signed_in)
    response = signed_in.put(
        "/api/user/settings", json={"notifications": {"push": True}}, headers=headers
    )
    assert response.status_code == 200
    response = signed_in.patch(
        "/api/user/settings",
        json={"notifications": {"push": None}, "theme": "dark"},
        headers=headers,
    )
    assert response.status_code == 200
    response = signed_in.post("/api/user/settings/reset", headers=headers)
    assert response.status_code == 200
    # A reset with nothing stored changes nothing.
    assert signed_in.post("/api/user/settings/reset", headers=headers).status_code == 200
    assert changes(app, user) == [
        ("notifications.push", None, True, "api"),
        ("notifications.push", True, None, "api"),
        ("theme", None, "dark", "api"),
        ("theme", "dark", None, "reset"),
    ]


def test_refused_write_records_nothing(app: Flask, signed_in: FlaskClient, user: int) -> None:
    headers = api_headers(signed_in)
    response = signed_in.put(
        "/api/user/settings", json={"theme": "dark", "locale": "xx"}, headers=headers
    )
    assert response.status_code == 422
    assert changes(app, user) == []


def test_stale_snapshot_falls_back_to_the_lock_with_the_right_old_value(
    app: Flask, user: int
) -> None:
    with app.app_context():
        stale = snapshots.load_snapshot(user)
        assert stale is not None
        service.update_settings(user, {"theme": "light"}, source="cli")
        # The compare-and-set with the stale snapshot misses; the locked path sees "light".
        service.update_settings(stale, {"theme": "dark"}, source="api")
        current = snapshots.load_snapshot(user)
        assert current is not None
        # And a current snapshot takes the compare-and-set path.
        service.update_settings(current, {"theme": "system"}, source="api")
    assert changes(app, user) == [
        ("theme", None, "light", "cli"),
        ("theme", "light", "dark", "api"),
        ("theme", "dark", "system", "api"),
    ]


def test_a_value_sent_again_is_written_when_the_row_moved_on(app: Flask, user: int) -> None:
    """A write that changes nothing against a stale snapshot must not be swallowed."""
    with app.app_context():
        service.update_settings(user, {"theme": "dark"}, source="cli")
        stale = snapshots.load_snapshot(user)
        assert stale is not None
        service.update_settings(user, {"theme": "light"}, source="cli")
        # "dark" is what the stale snapshot holds already; the row holds "light".
        service.update_settings(stale, {"theme": "dark"}, source="api")
        assert snapshots.load_snapshot(user).choices["theme"] == "dark"  # type: ignore[union-attr]
    assert changes(app, user)[-1] == ("theme", "light", "dark", "api")


def test_a_value_sent_again_to_a_current_row_changes_nothing(app: Flask, user: int) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark"}, source="cli")
        current = snapshots.load_snapshot(user)
        assert current is not None
        service.update_settings(current, {"theme": "dark"}, source="api")
        after = snapshots.load_snapshot(user)
        assert after is not None and after.version == current.version
    assert changes(app, user) == [("theme", None, "dark", "cli")]


def test_history_is_written_in_the_same_transaction(
    app: Flask, user: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after its history row was added leaves neither behind."""
    with app.app_context():

        def fail(user_id: int, version: int) -> None:
            raise RuntimeError("crash before commit")

        monkeypatch.setattr(writes.cache, "begin_write", fail)
        with pytest.raises(RuntimeError):
            service.update_settings(user, {"theme": "dark"})
        monkeypatch.undo()
        assert snapshots.load_snapshot(user).choices == {}  # type: ignore[union-attr]
    assert changes(app, user) == []


def test_history_api_pages_newest_first_with_a_cursor(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    with app.app_context():
        for zone in ("Europe/Berlin", "Europe/Paris", "Asia/Tokyo", "UTC", "America/Lima"):
            service.update_settings(user, {"timezone": zone}, source="cli")
    response = signed_in.get("/api/user/settings/history?limit=2")
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    assert [item["new"] for item in body["items"]] == ["America/Lima", "UTC"]
    first = body["items"][0]
    assert set(first) == {"key", "old", "new", "source", "at"}
    assert first["key"] == "timezone" and first["old"] == "UTC" and first["source"] == "cli"
    assert first["at"].endswith("Z")
    seen = [item["new"] for item in body["items"]]
    while body["next_cursor"]:
        body = signed_in.get(
            f"/api/user/settings/history?limit=2&cursor={body['next_cursor']}"
        ).get_json()
        seen.extend(item["new"] for item in body["items"])
    assert seen == ["America/Lima", "UTC", "Asia/Tokyo", "Europe/Paris", "Europe/Berlin"]
    # The default page holds all five, and says there is no more.
    body = signed_in.get("/api/user/settings/history").get_json()
    assert len(body["items"]) == 5 and body["next_cursor"] is None


def test_history_shows_only_the_users_own_changes(
    app: Flask, signed_in: FlaskClient, make_user: Any
) -> None:
    other = make_user("other@example.com")
    with app.app_context():
        service.update_settings(other, {"theme": "dark"})
    assert signed_in.get("/api/user/settings/history").get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("cursor=NOT-A-CURSOR", "The cursor is not valid"),
        ("cursor=", "The cursor is not valid"),
        ("limit=0", "The limit must be a whole number from 1 to 100."),
        ("limit=101", "The limit must be a whole number from 1 to 100."),
        ("limit=ten", "The limit must be a whole number from 1 to 100."),
    ],
)
def test_history_refuses_bad_paging(signed_in: FlaskClient, query: str, message: str) -> None:
    response = signed_in.get(f"/api/user/settings/history?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert message in response.get_json()["detail"]


def test_history_api_needs_a_session(client: FlaskClient) -> None:
    response = client.get("/api/user/settings/history")
    assert response.status_code == 401


def test_settings_page_loads_recent_changes_and_refreshes_them(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    page = signed_in.get("/settings").get_data(as_text=True)
    assert 'hx-get="/settings/history"' in page
    assert 'hx-trigger="load, settings-saved from:body"' in page
    with app.app_context():
        service.update_settings(user, {"timezone": "Asia/Tokyo", "locale": "de"}, source="api")
        for _ in range(6):
            service.update_settings(user, {"theme": "dark"}, source="page")
            service.update_settings(user, {"theme": None}, source="page")
    fragment = signed_in.get("/settings/history", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in html
    assert 'hx-trigger="settings-saved from:body"' in html
    # Ten rows, labels and times in the user's language and zone.
    assert html.count("<tr>") == 11
    assert "Dunkel" in html and "Standard (System)" in html and "Einstellungsseite" in html
    assert "Design" in html
    # Without script the same list is a page of its own.
    page = signed_in.get("/settings/history").get_data(as_text=True)
    assert "<html" in page and "Letzte Änderungen" in page


def test_history_times_follow_the_users_zone(app: Flask, signed_in: FlaskClient, user: int) -> None:
    with app.app_context():
        service.update_settings(user, {"timezone": "Asia/Tokyo"})
        db.session.execute(
            update(PreferenceChange).values(
                created_at=utcnow().replace(
                    year=2026, month=1, day=2, hour=0, minute=30, second=0, microsecond=0
                )
            )
        )
        db.session.commit()
    html = signed_in.get("/settings/history", headers={"HX-Request": "true"}).get_data(as_text=True)
    # 00:30 UTC is 09:30 in Tokyo.
    assert "Jan 2, 2026, 9:30:00" in html, html[html.find("<tbody") :]


def test_prune_history_deletes_old_entries(app: Flask, runner: FlaskCliRunner, user: int) -> None:
    with app.app_context():
        for theme in ("dark", "light", "system"):
            service.update_settings(user, {"theme": theme})
        oldest = db.session.scalar(select(PreferenceChange.id).order_by(PreferenceChange.id))
        db.session.execute(
            update(PreferenceChange)
            .where(PreferenceChange.id == oldest)
            .values(created_at=utcnow() - timedelta(days=400))
        )
        db.session.execute(
            update(PreferenceChange)
            .where(PreferenceChange.id == oldest + 1)
            .values(created_at=utcnow() - timedelta(days=40))
        )
        db.session.commit()
    result = runner.invoke(args=["preferences", "prune-history"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 history entries older than 365 days." in result.output
    assert [row[2] for row in changes(app, user)] == ["light", "system"]
    result = runner.invoke(args=["preferences", "prune-history", "--days", "30"])
    assert "Deleted 1 history entries older than 30 days." in result.output
    assert [row[2] for row in changes(app, user)] == ["system"]


@pytest.mark.parametrize("config_overrides", [{"HISTORY_RETENTION_DAYS": 0}])
def test_retention_comes_from_the_configuration(
    app: Flask, runner: FlaskCliRunner, user: int
) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark"})
        db.session.execute(
            update(PreferenceChange).values(created_at=utcnow() - timedelta(seconds=5))
        )
        db.session.commit()
    result = runner.invoke(args=["preferences", "prune-history"])
    assert "Deleted 1 history entries older than 0 days." in result.output


def test_deleting_a_user_deletes_their_history(app: Flask, user: int) -> None:
    with app.app_context():
        service.update_settings(user, {"theme": "dark"})
        db.session.execute(User.__table__.delete().where(User.id == user))
        db.session.commit()
    assert changes(app, user) == []
