"""Small helpers for answering htmx requests with fragments and response headers."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, make_response, render_template, request


def is_htmx_request() -> bool:
    """Whether htmx sent this request and wants a fragment.

    History restores (``HX-History-Restore-Request``) need the full page.
    """
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page_or_fragment(
    page: str, fragment: str, status: int = 200, **context: Any
) -> Response:
    """Render ``fragment`` for htmx and ``page`` otherwise, from the same context."""
    template = fragment if is_htmx_request() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def trigger(response: Response, events: dict[str, Any]) -> Response:
    """Fire client-side events after htmx swaps the response in (``HX-Trigger``)."""
    response.headers["HX-Trigger"] = json.dumps(events, ensure_ascii=True)
    return response
