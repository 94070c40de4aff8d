"""Security headers and cache rules on every kind of response."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize("path", ["/login", "/healthz", "/api/user/settings", "/nowhere"])
def test_security_headers_everywhere(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/settings", "/static/css/app.css", "/", "/nowhere"])
def test_each_security_header_is_sent_once(signed_in: FlaskClient, path: str) -> None:
    # Added at the WSGI layer: also to static files and redirects, and never twice.
    with signed_in.get(path) as response:
        for name in ("Content-Security-Policy", "X-Frame-Options", "Permissions-Policy"):
            assert len(response.headers.getlist(name)) == 1, (path, name)


def test_personalised_pages_are_private(signed_in: FlaskClient) -> None:
    response = signed_in.get("/settings")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


def test_session_cookie_flags(signed_in: FlaskClient) -> None:
    response = signed_in.get("/settings")
    cookie = signed_in.get_cookie("session")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert response.status_code == 200


def test_pages_have_no_inline_scripts(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert "<script>" not in html
    assert all('src="' in tag for tag in html.split("<script")[1:])


def test_static_files_can_be_cached(client: FlaskClient) -> None:
    with client.get("/static/css/app.css") as response:
        assert "no-store" not in response.headers.get("Cache-Control", "")


def test_oversized_form_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "x" * 20_000})
    assert response.status_code == 413


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)
