"""Request body limits: one per endpoint, enforced however the body is sent.

Werkzeug refuses a body whose ``Content-Length`` is over the limit, but a chunked body (no
length, as gunicorn hands it on) is only read up to the limit and then cut silently: a form
field after the cut reads as missing. So a chunked body is read here, before anything parses
it, and refused whole when it is too large.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

#: Endpoints allowed more than ``MAX_CONTENT_LENGTH`` (the import pages), in bytes.
LIMITS: dict[str, int] = {}


def allow(endpoint: str, size: int) -> None:
    """Let ``endpoint`` receive bodies of up to ``size`` bytes."""
    LIMITS[endpoint] = size


def limit_for(endpoint: str | None) -> int | None:
    """The body limit of ``endpoint``."""
    default = current_app.config.get("MAX_CONTENT_LENGTH")
    return LIMITS.get(endpoint or "", default)


def _enforce(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Set this request's limit, and read a chunked body whole, refusing it when too large.

    A URL value preprocessor of the app: it runs before every ``before_request`` function,
    so before CSRFProtect parses the form.

    :raise RequestEntityTooLarge: a chunked body over the limit.
    """
    limit = limit_for(endpoint)
    request.max_content_length = limit
    environ = request.environ
    if (
        request.content_length is not None
        or not environ.get("wsgi.input_terminated")
        # Without a length a request has a body only when it says it is chunked: a GET's
        # empty body is not read, nor replaced.
        or "HTTP_TRANSFER_ENCODING" not in environ
    ):
        return
    stream = environ["wsgi.input"]
    data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise RequestEntityTooLarge
    # From here on it is an ordinary body with a length, parsed once.
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    for cached in ("stream", "content_length"):
        request.__dict__.pop(cached, None)


def init_app(app: Flask) -> None:
    """Enforce the limits on every request of ``app``."""
    app.url_value_preprocessor(_enforce)
