"""Security headers on every response and cache rules for personalised ones."""

from __future__ import annotations

from flask import Flask, Response, request

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
    """Register the header hook on ``app``."""
    static_headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if app.config["HSTS_SECONDS"]:
        static_headers.append(
            (
                "Strict-Transport-Security",
                f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains",
            )
        )

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        # Built once per app: every response carries them, and no view sets its own.
        headers.extend(static_headers)
        if request.endpoint != "static":
            # Pages carry a user's data and a CSRF token: no shared cache may keep them.
            # Views that support revalidation (the settings API) set their own value.
            if "Cache-Control" not in headers:
                headers["Cache-Control"] = "no-store"
            response.vary.add("Cookie")
        return response
