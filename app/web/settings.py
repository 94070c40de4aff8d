"""bp "settings": the settings page, its no-script form and its htmx field saves."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_wtf import FlaskForm

from app.errors import error_response
from app.http import args
from app.http.htmx import is_htmx_request, render_page_or_fragment, trigger
from app.preferences import display, history, registry, service, validation
from app.preferences.registry import Preference
from app.preferences.session import signed_in
from app.preferences.snapshot import Settings
from app.ratelimits import settings_writes
from app.text import gettext
from app.web import page
from app.web.forms import SettingsForm, field_form, one_field

bp = Blueprint("settings", __name__)

FORM = "settings/_form.html"
FIELD = "settings/_field.html"
LAST_SAVED = "settings/_last_saved.html"
HISTORY = "settings/_history.html"
HISTORY_PAGE = "settings/history.html"

#: How many characters of a submitted field name are echoed back in a message.
MAX_ECHO = 40

#: How many changes the settings page lists.
RECENT_CHANGES = 10


@bp.get("/settings")
def index() -> ResponseReturnValue:
    """The settings page, from the cached snapshot: no SQL while the cache is warm."""
    return page.render(FORM)


@bp.post("/settings")
@settings_writes
def save() -> ResponseReturnValue:
    """Save the whole form (no script): back to the page with "Saved", or 422 with errors."""
    user = signed_in()
    form = SettingsForm()
    unknown = form.unknown_fields(request.form.keys())
    if unknown:
        names = ", ".join(name[:MAX_ECHO] for name in unknown[:3])
        form.form_errors.append(gettext("There is no setting called %(names)s.", names=names))
        return page.render(FORM, 422, form=form)
    # Only what the person changed on the page, and only where it differs, is stored: keys
    # left alone keep following their defaults and what other windows saved.
    edited = {
        key: value for key, value in form.edited().items() if value != user.settings.values[key]
    }
    try:
        saved = service.update_settings(
            user.snapshot, edited, source="page", seen=form.seen(), resets=False
        )
    except validation.ValidationError as exc:
        form.add_errors(exc.for_pages())
        return page.render(FORM, 422, form=form)
    except service.ConflictingChange as exc:
        return _conflict(exc)
    _flash_saved(saved)
    return redirect(url_for("settings.index"), code=303)


def _conflict(conflict: service.ConflictingChange) -> ResponseReturnValue:
    """409: the form as stored now, naming each key that another window changed meanwhile."""
    form = SettingsForm.from_settings(conflict.current)
    form.form_errors.append(
        gettext(
            "Some settings were changed in another window or on another device after this "
            "page was loaded. They are shown as they are now: choose again and save."
        )
    )
    for key in conflict.keys:
        value = display.display_value(key, conflict.current[key])
        form[registry.BY_KEY[key].field_name].errors = [
            gettext("Changed elsewhere meanwhile; it is now %(value)s.", value=value)
        ]
    return page.render(FORM, 409, form=form)


@bp.post("/settings/<field_name>")
@settings_writes
def save_field(field_name: str) -> ResponseReturnValue:
    """Save one setting (htmx): its re-rendered field, with "Saved" or the error announced."""
    pref = registry.BY_FIELD_NAME.get(field_name)
    if pref is None:
        return error_response(400, gettext("There is no such setting."))
    if set(request.form) - {field_name, "csrf_token"}:
        return error_response(400, gettext("Send one setting at a time to this address."))
    # The form only reads the value; the registry checks it, once, in the service.
    value = field_form(field_name)()[field_name].data
    try:
        saved = service.update_settings(
            signed_in().snapshot, {pref.key: value}, source="page", resets=False
        )
    except validation.ValidationError as exc:
        return _rejected(pref, [text for messages in exc.for_pages().values() for text in messages])
    return _saved(pref, saved)


@bp.get("/settings/last-saved")
def last_saved() -> ResponseReturnValue:
    """When the settings were last saved, in the user's zone; htmx refreshes it after a save."""
    return page.render(LAST_SAVED)


@bp.get("/settings/history", endpoint="history")
def changes_page() -> ResponseReturnValue:
    """The latest changes, older ones a page at a time (``?before=<id>``).

    htmx asks for the list alone, and again after each save.
    """
    before_id = args.lenient_id("before")
    found = history.history(signed_in().id, before_id=before_id, limit=RECENT_CHANGES + 1)
    recent = found[:RECENT_CHANGES]
    older = recent[-1].id if len(found) > RECENT_CHANGES else None
    return render_page_or_fragment(
        HISTORY_PAGE, HISTORY, history=display.rows(recent), older=older, paged=before_id
    )


def _flash_saved(settings: Settings) -> None:
    """Flash "Saved" in the language just chosen, which the next page is rendered in."""
    with force_locale(settings.values["locale"]):
        flash(gettext("Saved"), "success")


def _saved(pref: Preference, saved: Settings) -> ResponseReturnValue:
    """The answer to a successful single-setting save."""
    if not is_htmx_request():
        _flash_saved(saved)
        return redirect(url_for("settings.index"), code=303)
    if saved.values["locale"] != signed_in().settings.values["locale"]:
        # Every string on the page changes language: reload it rather than swap one field.
        _flash_saved(saved)
        response: Response = make_response("", 200)
        response.headers["HX-Refresh"] = "true"
        response.vary.add("HX-Request")
        return response

    def render_field() -> Response:
        form = one_field(pref.field_name, saved.values)
        return _render_field(form, pref, 200, gettext("Saved"))

    value = pref.normalized(saved.values[pref.key])
    response = page.saved_field(pref.field_name, value, render_field)
    # theme.js restyles the page from this event; the "last saved" line refreshes on it.
    return trigger(response, {"settings-saved": {pref.key: saved.values[pref.key]}})


def _rejected(pref: Preference, errors: list[str]) -> ResponseReturnValue:
    """422: the field as the server has it (htmx) or as submitted (page), with the errors."""
    form = SettingsForm.from_settings(signed_in().settings.values)
    field = form[pref.field_name]
    if not is_htmx_request():
        # Without script the whole page comes back, keeping what the person chose.
        field.process(request.form)
    field.errors = errors
    message = gettext(
        "%(setting)s was not saved: %(reason)s", setting=pref.label, reason=" ".join(errors)
    )
    return _render_field(form, pref, 422, message)


def _render_field(form: FlaskForm, pref: Preference, status: int, announcement: str) -> Response:
    """One field's fragment for htmx (the page otherwise), with a live-region message."""
    context: dict[str, Any] = {
        "field": form[pref.field_name],
        # Shown beside the control for a moment; the live region says it too.
        "saved": status == 200,
    }
    if is_htmx_request():
        # Only the fragment carries the out-of-band message; a full page shows it in place.
        context["announcement"] = announcement
    return page.render(FIELD, status, form=form, **context)
