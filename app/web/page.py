"""The settings page as the settings and transfer views render it, whole or as a fragment.

A plain view of the page (no form to show back, no message waiting) is the same HTML for
the same user snapshot, language, hour and registry, except for the CSRF token: each
app keeps the last few it rendered in this process and hands them out again with the
request's own token. Rendering the form (some 600 zone options, dozens of messages) was most of the
page's time. The field an htmx save answers with is kept the same way, by its value alone: it
holds no token and nothing else of the user's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request, session
from flask_babel import get_locale
from flask_wtf import FlaskForm

from app.http.csrf import request_token
from app.http.htmx import is_htmx_request, render_page_or_fragment
from app.http.kept import Kept, of_current_app
from app.preferences import registry
from app.preferences.session import signed_in
from app.times import utcnow
from app.web.forms import SettingsForm

PAGE = "settings/index.html"

#: Rendered pages (or fields) kept per process and kind; a page is some tens of KiB.
KEPT_PAGES = 128

#: What a page was rendered as: its HTML, and the CSRF token written into it (if any), both
#: encoded as sent: a kept page is served without encoding its tens of KiB again.
Rendered = tuple[bytes, bytes]

#: Seconds in an hour, the life of anything that shows a zone's offset.
HOUR = 3600


def _kept(kind: str) -> Kept[tuple[Any, ...], Rendered]:
    """This app's kept pages of ``kind``: kinds apart, so fields never push whole pages out."""
    kept: Kept[tuple[Any, ...], Rendered] = of_current_app(f"settings_{kind}", KEPT_PAGES)
    return kept


def render(
    fragment: str, status: int = 200, form: FlaskForm | None = None, **context: Any
) -> Response:
    """The settings page, or ``fragment`` of it for htmx, showing the signed-in user's settings.

    :param form: the form to show; by default the settings as currently saved.
    """
    if form is None and status == 200 and not context and _plain_view():
        return _kept_or_rendered(fragment)
    return _render(fragment, status, form, **context)


def _render(fragment: str, status: int, form: FlaskForm | None, **context: Any) -> Response:
    settings = signed_in().settings
    if form is None:
        form = SettingsForm.from_settings(settings.values)
    return render_page_or_fragment(PAGE, fragment, status, form=form, settings=settings, **context)


def _plain_view() -> bool:
    """A GET with nothing of its own to show: no query, no message waiting from a redirect."""
    return request.method == "GET" and not request.args and not session.get("_flashes")


def _same_everywhere() -> tuple[Any, ...]:
    """What any rendered part of the page depends on besides its own data and language."""
    return (
        is_htmx_request(),
        # Links carry the prefix a proxy may mount the app under.
        request.script_root,
        registry.fingerprint(),
        # Zone offsets in the picker change with daylight saving time, on the hour.
        int(utcnow().timestamp()) // HOUR,
    )


def _key(fragment: str) -> tuple[Any, ...]:
    """Everything a plain view of the page depends on but the CSRF token."""
    return (
        fragment,
        request.endpoint,
        # All of it, not only its version: a row changed behind the app's back (by hand,
        # or restored from a backup) keeps its version and must not show the old page.
        signed_in().snapshot.to_json(),
        # The language is chosen from the viewer and the browser's languages, both in the
        # key: asking Flask-Babel which it is would merge the settings for nothing else.
        request.headers.get("Accept-Language"),
        *_same_everywhere(),
    )


def _kept_or_rendered(fragment: str) -> Response:
    """The page from this process's copies, with this request's token, or rendered anew."""
    key, pages = _key(fragment), _kept("pages")
    token = request_token().encode()
    kept = pages.get(key)
    if kept is not None:
        html, kept_token = kept
        # The same session viewing the page again in this process has the same token.
        return _html(html if kept_token == token else html.replace(kept_token, token))
    response = _render(fragment, 200, None)
    pages.put(key, (response.get_data(), token))
    return response


def saved_field(field_name: str, value: Any, render_field: Callable[[], Response]) -> Response:
    """The field an htmx save of ``value`` answers with, kept, or ``render_field()`` anew.

    The answer is the same for everyone who saves that value in that language: the field
    with "Saved" beside it and the announcement, and no token.
    """
    key = (field_name, repr(value), str(get_locale()), *_same_everywhere())
    fields = _kept("fields")
    kept = fields.get(key)
    if kept is not None:
        return _html(kept[0])
    response = render_field()
    fields.put(key, (response.get_data(), b""))
    return response


def _html(html: bytes) -> Response:
    """A kept page or fragment as a new response; it differs by ``HX-Request``, as rendered."""
    response = Response(html, mimetype="text/html")
    response.vary.add("HX-Request")
    return response
