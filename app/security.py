"""Security headers on every response and cache rules for personalised ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue

from app.errors import error_response
from app.text import gettext

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Methods that change nothing, so need no proof of where they came from.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    """Register the origin check and the caching rules on ``app``."""
    app.before_request(check_origin)
    app.after_request(protect_response)


class SecurityHeaders:
    """The same security headers on every response, added at the WSGI layer.

    Every response carries them and no view sets its own, so they are appended as built
    once, rather than inserted and checked one by one into each response's headers; and
    outside Flask, like the request id, no response escapes them.
    """

    def __init__(self, app: WSGIApplication, config: Mapping[str, Any]) -> None:
        self.app = app
        headers = [
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ]
        if config["HSTS_SECONDS"]:
            hsts = f"max-age={config['HSTS_SECONDS']}; includeSubDomains"
            headers.append(("Strict-Transport-Security", hsts))
        self.headers = tuple(headers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            headers.extend(self.headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_headers)


def check_origin() -> ResponseReturnValue | None:
    """403 for a state-changing request that a browser says another site sent.

    Defence in depth beside the CSRF token: browsers send ``Origin`` (or at least
    ``Referer``) with every POST, PUT, PATCH and DELETE; clients that send neither are left
    to the token. The host decides; the scheme is left out, since a TLS load balancer in
    front of the proxy may leave the app seeing http while the browser says https.
    """
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get("Origin") or _origin_of(request.headers.get("Referer"))
    if sent is None or (sent == "null" and request.headers.get("Origin") is None):
        return None
    if urlsplit(sent).netloc != request.host:
        return error_response(403, gettext("This request did not come from this site."))
    return None


def protect_response(response: Response) -> Response:
    """No shared cache for what names a user; redirects relative to this host."""
    if request.endpoint != "static" or response.status_code >= 400:
        # Pages carry a user's data and a CSRF token, and so do error pages, wherever they
        # are: no shared cache may keep them. Views that support revalidation (the
        # settings API) set their own value.
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    location = response.headers.get("Location")
    if location and location.startswith(request.host_url):
        # Werkzeug's own redirects (``//users`` to ``/users``) are built from the Host the
        # client sent; relative, they cannot point anywhere else.
        response.headers["Location"] = "/" + location[len(request.host_url) :]
    return response


def _origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL, or ``None`` when there is none to read."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"
