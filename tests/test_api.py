"""The JSON API: every row of SPEC.md's table, every bad input, the ETag cycle, the schemas."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import config, create_app, security
from app.api import contract, openapi
from app.extensions import db
from app.http.problems import MEDIA_TYPE
from app.models import User
from app.preferences import history, registry, transfer, validation
from tests.conftest import count_sql, csrf_token

URL = "/api/user/settings"
RESET_URL = "/api/user/settings/reset"
DEFAULTS = {
    "theme": "system",
    "locale": "en",
    "timezone": "UTC",
    "notifications": {"email": True, "push": False, "digest": "weekly"},
}

#: Values for one key at a time, and whether they may be saved. The settings page feeds the
#: same table to its form, so page, API and ``validation.validate`` agree on every case.
VALUE_CASES: list[tuple[str, Any, bool]] = [
    ("theme", "light", True),
    ("theme", "dark", True),
    ("theme", "system", True),
    ("theme", "Dark", False),
    ("theme", "", False),
    ("theme", "blue", False),
    ("theme", 1, False),
    ("theme", True, False),
    ("theme", ["dark"], False),
    ("locale", "en", True),
    ("locale", "de", True),
    ("locale", "fr", True),
    ("locale", "ja", True),
    ("locale", "xx", False),
    ("locale", "en_US", False),
    ("timezone", "UTC", True),
    ("timezone", "Europe/Berlin", True),
    ("timezone", "America/Argentina/Buenos_Aires", True),
    ("timezone", "Mars/Olympus_Mons", False),
    ("timezone", "europe/berlin", False),
    ("timezone", "../../etc/passwd", False),
    ("timezone", "x" * 200, False),
    ("timezone", 0, False),
    ("notifications.email", True, True),
    ("notifications.email", False, True),
    ("notifications.email", "true", False),
    ("notifications.email", 1, False),
    ("notifications.push", False, True),
    ("notifications.push", "yes", False),
    ("notifications.digest", "daily", True),
    ("notifications.digest", "off", True),
    ("notifications.digest", "hourly", False),
    ("notifications.digest", False, False),
    ("notifications.unknown", True, False),
    ("colour", "red", False),
]


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture
def headers(signed_in: FlaskClient) -> dict[str, str]:
    """The CSRF header a page's scripts send with every write."""
    return {"X-CSRFToken": csrf_token(signed_in, "/settings")}


def stored(app: Flask, user_id: int) -> tuple[dict[str, Any], int]:
    """What the database holds for ``user_id``: the preferences document and the version."""
    with app.app_context():
        row = db.session.execute(
            select(User.preferences, User.version).where(User.id == user_id)
        ).one()
        db.session.rollback()
        return dict(row.preferences), int(row.version)


def nested(key: str, value: Any) -> dict[str, Any]:
    """A settings object holding one dotted key, nested as the API speaks."""
    head, dot, tail = key.partition(".")
    return {head: {tail: value}} if dot else {key: value}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """Check a problem document and return it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == MEDIA_TYPE
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("/api/problems/")
    assert body["title"]
    assert body["detail"]
    return body


# --- GET and conditional GET --------------------------------------------------------------


def test_get_settings_returns_defaults_etag_and_cache_headers(
    signed_in: FlaskClient, user: int
) -> None:
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {**DEFAULTS, "updated_at": None}
    assert response.headers["ETag"] == f'"{user}.1.{registry.fingerprint()}"'
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert "Cookie" in response.headers["Vary"]


def test_get_settings_reports_updated_at_in_utc(
    signed_in: FlaskClient, headers: dict[str, str]
) -> None:
    signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    body = signed_in.get(URL).get_json()
    assert body["theme"] == "dark"
    assert body["updated_at"].endswith("Z")


@pytest.mark.parametrize(
    "header",
    [
        "{etag}",
        "W/{etag}",
        '"other", {etag}',
        '"a", W/"b", W/{etag}',
        "*",
    ],
)
def test_conditional_get_matching_if_none_match_is_304(signed_in: FlaskClient, header: str) -> None:
    etag = signed_in.get(URL).headers["ETag"]
    response = signed_in.get(URL, headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("header", ['"1.0.0000000000"', 'W/"x"', "garbage", ""])
def test_conditional_get_other_if_none_match_is_200(signed_in: FlaskClient, header: str) -> None:
    response = signed_in.get(URL, headers={"If-None-Match": header})
    assert response.status_code == 200
    assert response.get_json()["theme"] == "system"


def test_warm_get_issues_no_sql(app: Flask, signed_in: FlaskClient) -> None:
    etag = signed_in.get(URL).headers["ETag"]  # warms the cache
    with count_sql(app) as statements:
        assert signed_in.get(URL).status_code == 200
        assert signed_in.get(URL, headers={"If-None-Match": etag}).status_code == 304
    assert statements == []


# --- the ETag cycle and If-Match ----------------------------------------------------------


def test_etag_cycle(app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int) -> None:
    first = signed_in.get(URL)
    old_etag = first.headers["ETag"]
    assert signed_in.get(URL, headers={"If-None-Match": old_etag}).status_code == 304

    saved = signed_in.patch(URL, json={"theme": "dark"}, headers={**headers, "If-Match": old_etag})
    assert saved.status_code == 200
    assert saved.get_json()["theme"] == "dark"
    new_etag = saved.headers["ETag"]
    assert new_etag != old_etag
    assert saved.headers["Cache-Control"] == "private, no-cache"

    before = stored(app, user)
    stale = signed_in.patch(URL, json={"theme": "light"}, headers={**headers, "If-Match": old_etag})
    body = assert_problem(stale, 412)
    assert "changed" in body["detail"]
    assert stale.headers["ETag"] == new_etag
    assert stored(app, user) == before

    assert signed_in.get(URL, headers={"If-None-Match": old_etag}).status_code == 200
    assert signed_in.get(URL, headers={"If-None-Match": new_etag}).status_code == 304


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_current_or_star_writes(
    signed_in: FlaskClient, headers: dict[str, str], method: str
) -> None:
    for template, theme in (("{etag}", "dark"), ('"nope", W/"x", {etag}', "light"), ("*", "dark")):
        if_match = template.format(etag=signed_in.get(URL).headers["ETag"])
        response = getattr(signed_in, method)(
            URL, json={"theme": theme}, headers={**headers, "If-Match": if_match}
        )
        assert response.status_code == 200, if_match
        assert response.get_json()["theme"] == theme


@pytest.mark.parametrize(
    "make_tag",
    [
        pytest.param(lambda uid, v, fp: f'W/"{uid}.{v}.{fp}"', id="weak"),
        pytest.param(lambda uid, v, fp: f'"{uid + 1000}.{v}.{fp}"', id="other-user"),
        pytest.param(lambda uid, v, fp: f'"{uid}.{v}.0000000000"', id="other-registry"),
        pytest.param(lambda uid, v, fp: f'"{uid}.{v + 7}.{fp}"', id="future-version"),
        pytest.param(lambda uid, v, fp: f'"{uid}.x.{fp}"', id="not-a-version"),
        pytest.param(lambda uid, v, fp: "garbage", id="garbage"),
        pytest.param(lambda uid, v, fp: "", id="empty"),
        pytest.param(lambda uid, v, fp: '""', id="empty-tag"),
        pytest.param(lambda uid, v, fp: 'W/, "", ,', id="junk-list"),
    ],
)
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [("put", URL, {"theme": "dark"}), ("patch", URL, {"theme": "dark"}), ("post", RESET_URL, None)],
)
def test_if_match_that_cannot_match_is_412_and_changes_nothing(
    app: Flask,
    signed_in: FlaskClient,
    headers: dict[str, str],
    user: int,
    make_tag: Callable[[int, int, str], str],
    method: str,
    url: str,
    body: Any,
) -> None:
    signed_in.put(URL, json={"theme": "light"}, headers=headers)
    before = stored(app, user)
    tag = make_tag(user, before[1], registry.fingerprint())
    response = getattr(signed_in, method)(url, json=body, headers={**headers, "If-Match": tag})
    assert_problem(response, 412)
    assert stored(app, user) == before


def test_reset_with_stale_if_match_is_412(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    old = signed_in.get(URL).headers["ETag"]
    signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    before = stored(app, user)
    response = signed_in.post(RESET_URL, headers={**headers, "If-Match": old})
    assert_problem(response, 412)
    assert stored(app, user) == before


# --- PUT -----------------------------------------------------------------------------------


def test_put_saves_given_keys_and_keeps_others(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    first = signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    assert first.status_code == 200
    second = signed_in.put(
        URL, json={"notifications": {"digest": "daily"}, "timezone": "Asia/Tokyo"}, headers=headers
    )
    assert second.status_code == 200
    body = second.get_json()
    assert body["theme"] == "dark"
    assert body["timezone"] == "Asia/Tokyo"
    assert body["notifications"] == {"email": True, "push": False, "digest": "daily"}
    assert second.headers["ETag"] != first.headers["ETag"]
    choices, _ = stored(app, user)
    assert {k: v for k, v in choices.items() if k != "_v"} == {
        "theme": "dark",
        "timezone": "Asia/Tokyo",
        "notifications.digest": "daily",
    }
    assert signed_in.get(URL).get_json() == body


def test_put_accepts_the_document_it_read(signed_in: FlaskClient, headers: dict[str, str]) -> None:
    signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    document = signed_in.get(URL).get_json()
    document["locale"] = "de"
    document["notifications"]["push"] = True
    response = signed_in.put(URL, json=document, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["locale"] == "de"
    assert response.get_json()["notifications"]["push"] is True
    assert response.get_json()["updated_at"] != document["updated_at"]


def test_put_without_change_keeps_etag(signed_in: FlaskClient, headers: dict[str, str]) -> None:
    etag = signed_in.put(URL, json={"theme": "dark"}, headers=headers).headers["ETag"]
    response = signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["ETag"] == etag


def test_put_null_is_refused(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    signed_in.put(URL, json={"theme": "dark"}, headers=headers)
    before = stored(app, user)
    body = assert_problem(signed_in.put(URL, json={"theme": None}, headers=headers), 422)
    assert list(body["errors"]) == ["theme"]
    assert stored(app, user) == before


def test_put_is_all_or_nothing(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    before = stored(app, user)
    response = signed_in.put(
        URL,
        json={"theme": "dark", "locale": "xx", "notifications": {"digest": "hourly"}},
        headers=headers,
    )
    body = assert_problem(response, 422)
    assert set(body["errors"]) == {"locale", "notifications.digest"}
    assert "locale" in body["detail"]
    assert stored(app, user) == before


# --- PATCH ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json"])
def test_patch_accepts_merge_patch_and_json(
    signed_in: FlaskClient, headers: dict[str, str], content_type: str
) -> None:
    response = signed_in.patch(
        URL,
        data=json.dumps({"notifications": {"push": True}}),
        content_type=content_type,
        headers=headers,
    )
    assert response.status_code == 200
    assert response.get_json()["notifications"] == {"email": True, "push": True, "digest": "weekly"}


def test_patch_null_resets_key(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    signed_in.put(URL, json={"theme": "dark", "locale": "fr"}, headers=headers)
    response = signed_in.patch(
        URL,
        data=json.dumps({"theme": None}),
        content_type="application/merge-patch+json",
        headers=headers,
    )
    assert response.status_code == 200
    assert response.get_json()["theme"] == "system"
    assert response.get_json()["locale"] == "fr"
    choices, _ = stored(app, user)
    assert "theme" not in choices
    assert choices["locale"] == "fr"


def test_patch_null_resets_group_and_nested_key(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    signed_in.put(
        URL,
        json={"theme": "dark", "notifications": {"email": False, "push": True, "digest": "off"}},
        headers=headers,
    )
    one = signed_in.patch(URL, json={"notifications": {"push": None}}, headers=headers)
    assert one.get_json()["notifications"] == {"email": False, "push": False, "digest": "off"}
    group = signed_in.patch(URL, json={"notifications": None}, headers=headers)
    assert group.status_code == 200
    assert group.get_json()["notifications"] == DEFAULTS["notifications"]
    assert group.get_json()["theme"] == "dark"
    choices, _ = stored(app, user)
    assert not any(key.startswith("notifications.") for key in choices)


def test_put_rejects_merge_patch_media_type(
    signed_in: FlaskClient, headers: dict[str, str]
) -> None:
    response = signed_in.put(
        URL, data='{"theme": "dark"}', content_type="application/merge-patch+json", headers=headers
    )
    assert_problem(response, 415)


# --- reset ---------------------------------------------------------------------------------


@pytest.fixture
def customised(signed_in: FlaskClient, headers: dict[str, str]) -> FlaskClient:
    """The signed-in client after changing every key away from its default."""
    response = signed_in.put(
        URL,
        json={
            "theme": "dark",
            "locale": "de",
            "timezone": "Europe/Berlin",
            "notifications": {"email": False, "push": True, "digest": "daily"},
        },
        headers=headers,
    )
    assert response.status_code == 200
    return signed_in


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (None, None),
        ("", "application/json"),
        ("  \n", "application/json"),
        ("{}", "application/json"),
    ],
)
def test_reset_without_keys_resets_everything(
    app: Flask,
    customised: FlaskClient,
    headers: dict[str, str],
    user: int,
    data: str | None,
    content_type: str | None,
) -> None:
    response = customised.post(RESET_URL, data=data, content_type=content_type, headers=headers)
    assert response.status_code == 200
    assert {k: v for k, v in response.get_json().items() if k != "updated_at"} == DEFAULTS
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["ETag"] == customised.get(URL).headers["ETag"]
    choices, _ = stored(app, user)
    assert set(choices) <= {"_v"}


def test_reset_named_keys_and_groups(
    app: Flask, customised: FlaskClient, headers: dict[str, str], user: int
) -> None:
    response = customised.post(
        RESET_URL, json={"keys": ["theme", "notifications"]}, headers=headers
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["theme"] == "system"
    assert body["notifications"] == DEFAULTS["notifications"]
    assert body["locale"] == "de"
    assert body["timezone"] == "Europe/Berlin"
    one = customised.post(RESET_URL, json={"keys": ["locale"]}, headers=headers).get_json()
    assert one["locale"] == "en"
    assert one["timezone"] == "Europe/Berlin"
    choices, _ = stored(app, user)
    assert {k for k in choices if k != "_v"} == {"timezone"}


def test_reset_empty_key_list_resets_nothing(
    app: Flask, customised: FlaskClient, headers: dict[str, str], user: int
) -> None:
    before = stored(app, user)
    response = customised.post(RESET_URL, json={"keys": []}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["theme"] == "dark"
    assert stored(app, user) == before


@pytest.mark.parametrize(
    ("body", "error_key"),
    [
        ({"keys": ["theme", "colour"]}, "colour"),
        ({"keys": ["notifications.sms"]}, "notifications.sms"),
        ({"keys": [1]}, "1"),
        ({"keys": "theme"}, "keys"),
        ({"keys": None}, "keys"),
        ({"key": ["theme"]}, "key"),
        (["theme"], ""),
        ("theme", ""),
    ],
)
def test_reset_bad_body_is_422_and_changes_nothing(
    app: Flask,
    customised: FlaskClient,
    headers: dict[str, str],
    user: int,
    body: Any,
    error_key: str,
) -> None:
    before = stored(app, user)
    problem = assert_problem(customised.post(RESET_URL, json=body, headers=headers), 422)
    assert error_key in problem["errors"]
    assert stored(app, user) == before


# --- bad input -----------------------------------------------------------------------------

BAD_BODIES = [
    # (description, raw body, content type, status, text expected in the detail)
    ("malformed", b'{"theme": "dark"', "application/json", 400, "not valid JSON"),
    ("trailing-garbage", b'{"theme": "dark"} x', "application/json", 400, "not valid JSON"),
    ("nan", b'{"theme": NaN}', "application/json", 400, "NaN"),
    ("infinity", b'{"notifications": {"push": Infinity}}', "application/json", 400, "Infinity"),
    ("minus-infinity", b'{"theme": -Infinity}', "application/json", 400, "Infinity"),
    ("duplicate-member", b'{"theme": "dark", "theme": "light"}', "application/json", 400, "repeat"),
    ("not-utf8", b'{"theme": "\xff"}', "application/json", 400, "UTF-8"),
    ("deep-and-too-large", b"[" * 10_000 + b"]" * 10_000, "application/json", 413, "too large"),
    ("deep-but-small", b"[" * 5000 + b"]" * 5000, "application/json", 400, "nested"),
    ("huge-integer", b'{"theme": ' + b"9" * 5000 + b"}", "application/json", 400, "not valid"),
    ("empty", b"", "application/json", 400, "not valid JSON"),
    ("array", b'["theme", "dark"]', "application/json", 422, "JSON object"),
    ("string", b'"dark"', "application/json", 422, "JSON object"),
    ("number", b"1", "application/json", 422, "JSON object"),
    ("null", b"null", "application/json", 422, "JSON object"),
    ("unknown-key", b'{"colour": "red"}', "application/json", 422, "colour"),
    ("unknown-nested-key", b'{"notifications": {"sms": true}}', "application/json", 422, "sms"),
    ("dotted-top-level", b'{"notifications.push": true}', "application/json", 422, "Unknown"),
    ("wrong-type", b'{"notifications": {"email": "yes"}}', "application/json", 422, "true or"),
    ("group-not-object", b'{"notifications": true}', "application/json", 422, "object"),
    ("value-is-object", b'{"theme": {"x": 1}}', "application/json", 422, "single value"),
    ("float", b'{"theme": 1.5}', "application/json", 422, "string"),
    ("overflowing-float", b'{"notifications": {"push": 1e999}}', "application/json", 422, "true"),
    ("read-only-wrong-type", b'{"updated_at": 5}', "application/json", 422, "Read-only"),
    ("form-encoded", b"theme=dark", "application/x-www-form-urlencoded", 415, "JSON"),
    ("text", b'{"theme": "dark"}', "text/plain", 415, "JSON"),
    ("no-content-type", b'{"theme": "dark"}', None, 415, "JSON"),
    ("too-large", b'{"theme": "' + b"d" * 17_000 + b'"}', "application/json", 413, "too large"),
]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "detail"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_bad_body_gets_problem_and_saves_nothing(
    app: Flask,
    signed_in: FlaskClient,
    headers: dict[str, str],
    user: int,
    method: str,
    raw: bytes,
    content_type: str | None,
    status: int,
    detail: str,
) -> None:
    signed_in.put(URL, json={"theme": "light"}, headers=headers)
    before = stored(app, user)
    response = getattr(signed_in, method)(URL, data=raw, content_type=content_type, headers=headers)
    body = assert_problem(response, status)
    assert detail in body["detail"]
    if status == 422:
        assert body["type"] == "/api/problems/validation"
        assert body["errors"]
    assert stored(app, user) == before
    assert signed_in.get(URL).get_json()["theme"] == "light"


def test_chunked_body_over_limit_is_413(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    before = stored(app, user)
    body = b'{"theme": "dark"' + b" " * 17_000 + b"}"
    response = signed_in.put(
        URL,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**headers, "Transfer-Encoding": "chunked"},
        # What gunicorn says of a chunked body it decodes for the app.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413)
    assert stored(app, user) == before


def test_chunked_body_under_limit_is_read(signed_in: FlaskClient, headers: dict[str, str]) -> None:
    response = signed_in.put(
        URL,
        input_stream=io.BytesIO(b'{"theme": "dark"}'),
        content_type="application/json",
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    assert response.get_json()["theme"] == "dark"


def test_validation_errors_are_keyed_by_dotted_key(
    signed_in: FlaskClient, headers: dict[str, str]
) -> None:
    response = signed_in.put(
        URL,
        json={"theme": "blue", "notifications": {"digest": "hourly", "sms": True}},
        headers=headers,
    )
    body = assert_problem(response, 422)
    assert set(body["errors"]) == {"theme", "notifications.digest", "notifications.sms"}
    assert all(isinstance(m, str) for ms in body["errors"].values() for m in ms)


# --- CSRF, sessions and unknown routes -----------------------------------------------------

WRITES = [
    ("put", URL, {"theme": "dark"}),
    ("patch", URL, {"theme": "dark"}),
    ("post", RESET_URL, {"keys": ["theme"]}),
]


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_write_without_valid_csrf_token_is_403(
    app: Flask,
    customised: FlaskClient,
    user: int,
    method: str,
    url: str,
    body: Any,
    token: str | None,
) -> None:
    before = stored(app, user)
    sent = {} if token is None else {"X-CSRFToken": token}
    problem = assert_problem(getattr(customised, method)(url, json=body, headers=sent), 403)
    assert "token" in problem["detail"]
    assert stored(app, user) == before


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", URL, None),
        ("get", "/api/user/settings/schema", None),
        *WRITES,
    ],
)
def test_no_session_is_401_not_a_redirect(
    client: FlaskClient, method: str, url: str, body: Any
) -> None:
    response = getattr(client, method)(url, json=body)
    problem = assert_problem(response, 401)
    assert "Location" not in response.headers
    assert "sign in" in problem["detail"].lower()


def test_no_session_with_a_csrf_token_is_401(app: Flask, client: FlaskClient, user: int) -> None:
    token = csrf_token(client)  # an anonymous session with a token, as the login page gives
    before = stored(app, user)
    response = client.put(URL, json={"theme": "dark"}, headers={"X-CSRFToken": token})
    assert_problem(response, 401)
    assert stored(app, user) == before


def test_signed_out_session_is_401(
    app: Flask, signed_in: FlaskClient, headers: dict[str, str], user: int
) -> None:
    signed_in.post("/logout", data={"csrf_token": headers["X-CSRFToken"]})
    assert_problem(signed_in.get(URL), 401)
    assert_problem(signed_in.put(URL, json={"theme": "dark"}, headers=headers), 401)


@pytest.mark.parametrize("path", ["/api/nope", "/api/user/settings/nope", "/api", "/api/user"])
def test_unknown_api_path_is_404_problem(signed_in: FlaskClient, path: str) -> None:
    assert_problem(signed_in.get(path), 404)


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("delete", URL, {"GET", "PUT", "PATCH"}),
        ("post", URL, {"GET", "PUT", "PATCH"}),
        ("get", RESET_URL, {"POST"}),
        ("put", "/api/openapi.json", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(
    signed_in: FlaskClient, headers: dict[str, str], method: str, url: str, allowed: set[str]
) -> None:
    response = getattr(signed_in, method)(url, headers=headers)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_unexpected_error_is_500_problem(
    app: Flask,
    signed_in: FlaskClient,
    headers: dict[str, str],
    user: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.preferences.service.update_from_document", explode)
    before = stored(app, user)
    body = assert_problem(signed_in.put(URL, json={"theme": "dark"}, headers=headers), 500)
    assert "boom" not in body["detail"]
    assert stored(app, user) == before


# --- the same values through the API and through the registry ------------------------------


@pytest.mark.parametrize(("key", "value", "valid"), VALUE_CASES)
def test_api_and_registry_accept_the_same_values(
    app: Flask,
    signed_in: FlaskClient,
    headers: dict[str, str],
    user: int,
    key: str,
    value: Any,
    valid: bool,
) -> None:
    with app.test_request_context():
        try:
            validation.validate({key: value})
        except validation.ValidationError:
            service_accepts = False
        else:
            service_accepts = True
    before = stored(app, user)
    response = signed_in.put(URL, json=nested(key, value), headers=headers)
    assert service_accepts is valid
    assert (response.status_code == 200) is valid, response.get_json()
    if valid:
        shown = response.get_json()
        for part in key.split("."):
            shown = shown[part]
        assert shown == value
    else:
        assert_problem(response, 422)
        assert key in response.get_json()["errors"]
        assert stored(app, user) == before


# --- schema and OpenAPI --------------------------------------------------------------------


def test_schema_is_2020_12_and_validates_responses(
    signed_in: FlaskClient, headers: dict[str, str]
) -> None:
    response = signed_in.get("/api/user/settings/schema")
    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    schema = response.get_json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(schema)
    validator = jsonschema_rs.Draft202012Validator(schema)

    validator.validate(signed_in.get(URL).get_json())
    changed = signed_in.put(
        URL,
        json={"theme": "dark", "timezone": "Pacific/Auckland", "notifications": {"email": False}},
        headers=headers,
    ).get_json()
    validator.validate(changed)
    assert not validator.is_valid({**changed, "theme": "blue"})
    assert not validator.is_valid({**changed, "extra": 1})
    theme = schema["properties"]["theme"]
    assert theme["default"] == "system"
    assert theme["enum"] == ["light", "dark", "system"]
    assert theme["description"]
    assert schema["properties"]["notifications"]["properties"]["email"]["type"] == "boolean"


def test_openapi_document_describes_every_api_route(app: Flask, signed_in: FlaskClient) -> None:
    response = signed_in.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert [server["url"] for server in document["servers"]] == ["/api"]

    routes = {
        (rule.rule.removeprefix("/api"), method.lower(), rule.endpoint)
        for rule in app.url_map.iter_rules()
        # The reference page is HTML for people, not an operation of the API.
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.docs"
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method, "api." + operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert routes == documented
    assert {endpoint for *_, endpoint in routes} == {
        "api.get_settings",
        "api.put_settings",
        "api.patch_settings",
        "api.reset_settings",
        "api.get_schema",
        "api.get_openapi",
        "api.get_history",
        "api.export_settings",
        "api.import_settings",
    }

    components = document["components"]
    tags = {tag["name"] for tag in document["tags"]}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["description"] and operation["summary"], (path, method)
            assert set(operation["tags"]) <= tags, (path, method)
            responses = operation["responses"]
            public = operation.get("security") == []
            assert ("401" in responses) is not public and "500" in responses, (path, method)
            for status, ref in responses.items():
                if status.startswith(("4", "5")):
                    name = ref["$ref"].rsplit("/", 1)[1]
                    assert MEDIA_TYPE in components["responses"][name]["content"]
            if method != "get":
                assert operation["security"] == [{"session": [], "csrf": []}]
                assert {"400", "403", "413", "415", "422"} <= set(responses)
            if method != "get" and path != "/user/settings/import":
                # Imports replace everything, so they have no If-Match to compare.
                assert "412" in responses
                assert operation["parameters"] == [{"$ref": "#/components/parameters/IfMatch"}]
    get = document["paths"]["/user/settings"]["get"]
    assert "304" in get["responses"]
    assert components["parameters"]["IfNoneMatch"]["name"] == "If-None-Match"
    assert components["parameters"]["IfMatch"]["name"] == "If-Match"
    assert components["securitySchemes"]["csrf"]["name"] == "X-CSRFToken"
    assert components["headers"]["ETag"]["required"] is True
    patch_body = document["paths"]["/user/settings"]["patch"]["requestBody"]["content"]
    assert set(patch_body) == {"application/merge-patch+json", "application/json"}

    # The settings bodies come from the registry, every key of it.
    settings = components["schemas"]["Settings"]
    for pref in registry.PREFERENCES:
        where = settings["properties"]
        if pref.group:
            where = where[pref.group]["properties"]
        assert where[pref.name]["default"] == pref.default
    # Shared pieces such as TimeZone are references into the document, so validate from its root.
    by_reference = {"$ref": "#/components/schemas/Settings", "components": components}
    jsonschema_rs.Draft202012Validator(by_reference).validate(signed_in.get(URL).get_json())


def test_openapi_document_loads_in_schemathesis(signed_in: FlaskClient) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(signed_in.get("/api/openapi.json").get_json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.definition.raw["operationId"] for op in operations} == {
        "get_settings",
        "put_settings",
        "patch_settings",
        "reset_settings",
        "get_schema",
        "get_openapi",
        "get_history",
        "export_settings",
        "import_settings",
    }


def test_openapi_document_follows_the_constants_the_code_enforces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "MAX_BODY_BYTES", 32 * 1024)
    monkeypatch.setattr(transfer, "IMPORT_MAX_BYTES", 128 * 1024)
    monkeypatch.setattr(contract, "HISTORY_MAX_LIMIT", 250)
    monkeypatch.setattr(history, "HISTORY_PAGE", 25)
    monkeypatch.setattr(contract, "SETTINGS_CACHE_CONTROL", "private, max-age=0")
    ctx = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with ctx.test_request_context():
        document = openapi.document()

    responses = document["components"]["responses"]
    assert "32 KiB" in responses["413"]["description"]
    assert "128 KiB" in responses["ImportTooLarge"]["description"]
    limit = document["paths"]["/user/settings/history"]["get"]["parameters"][1]["schema"]
    assert (limit["maximum"], limit["default"]) == (250, 25)
    cache_control = document["components"]["headers"]["CacheControl"]["schema"]
    assert cache_control["const"] == "private, max-age=0"


COMMITTED_OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def test_committed_openapi_document_is_the_one_served(client: FlaskClient) -> None:
    """docs/openapi.json is what generated clients build from; it must not drift."""
    served = client.get("/api/openapi.json")
    assert served.status_code == 200, "the document is public"
    assert served.get_json() == json.loads(COMMITTED_OPENAPI.read_text()), (
        "docs/openapi.json is out of date: run `make docs`"
    )
    assert COMMITTED_OPENAPI.read_text() == openapi.serialised()


@pytest.mark.parametrize("locale", ["de", "ja"])
def test_openapi_document_is_english_whoever_asks(
    signed_in: FlaskClient, headers: dict[str, str], locale: str
) -> None:
    assert signed_in.put(URL, json={"locale": locale}, headers=headers).status_code == 200
    assert 'lang="' + locale in signed_in.get("/settings").get_data(as_text=True)
    document = signed_in.get("/api/openapi.json", headers={"Accept-Language": locale})
    assert document.get_json() == json.loads(COMMITTED_OPENAPI.read_text())
    theme = document.get_json()["components"]["schemas"]["Settings"]["properties"]["theme"]
    assert theme["title"] == "Theme"


def test_openapi_document_lists_the_pinned_zones_not_the_hosts() -> None:
    from app.preferences.zones import time_zones

    zones = openapi.document()["components"]["schemas"]["TimeZone"]["enum"]
    assert zones == list(time_zones())
    # pytz's list, not the host's zone files: these differ between distributions.
    assert "Factory" not in zones and "localtime" not in zones


def test_api_reference_page_is_public_under_the_app_wide_policy(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-spec-url="/api/openapi.json"' in html
    assets = [
        part.split('"', 1)[0] for part in html.split(' src="')[1:] + html.split(' href="')[1:]
    ]
    for asset in [path for path in assets if path.startswith("/static/")]:
        with client.get(asset) as served:
            assert served.status_code == 200, asset
    # Swagger UI needs no exception: no inline script or style, nothing from elsewhere.
    assert response.headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY
    assert "<script>" not in html and "style=" not in html
