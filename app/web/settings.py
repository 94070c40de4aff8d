"""The settings page and its htmx fragments."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_login import current_user

from app.errors import error_response
from app.htmx import is_htmx_request, render_page_or_fragment, trigger
from app.preferences import registry, service
from app.preferences.forms import SettingsForm, SettingsFormBase
from app.preferences.registry import Preference
from app.text import gettext

bp = Blueprint("settings", __name__)

PAGE = "settings/index.html"
FORM = "settings/_form.html"
FIELD = "settings/_field.html"
LAST_SAVED = "settings/_last_saved.html"

#: How many characters of a submitted field name are echoed back in a message.
MAX_ECHO = 40


@bp.get("/settings")
def index() -> ResponseReturnValue:
    """The settings page, from the cached snapshot: no SQL while the cache is warm."""
    settings = current_user.settings
    form = SettingsForm.from_settings(settings.values)
    return render_page_or_fragment(PAGE, FORM, form=form, settings=settings)


@bp.post("/settings")
def save() -> ResponseReturnValue:
    """Save the whole form (no script): back to the page with "Saved", or 422 with errors."""
    settings = current_user.settings
    form = SettingsForm()
    unknown = form.unknown_fields(request.form.keys())
    if unknown:
        names = ", ".join(name[:MAX_ECHO] for name in unknown[:3])
        form.form_errors.append(gettext("There is no setting called %(names)s.", names=names))
    elif form.validate():
        # Only what differs is stored, so keys left alone keep following their defaults.
        changes = {
            key: value for key, value in form.changes().items() if value != settings.values[key]
        }
        try:
            saved = service.update_settings(current_user.id, changes)
        except registry.ValidationError as exc:
            form.add_errors(exc.errors)
        else:
            _flash_saved(saved)
            return redirect(url_for("settings.index"), code=303)
    return render_page_or_fragment(PAGE, FORM, 422, form=form, settings=settings)


@bp.post("/settings/<field_name>")
def save_field(field_name: str) -> ResponseReturnValue:
    """Save one setting (htmx): its re-rendered field, with "Saved" or the error announced."""
    pref = registry.BY_FIELD_NAME.get(field_name)
    if pref is None:
        return error_response(400, gettext("There is no such setting."))
    if set(request.form) - {field_name, "csrf_token"}:
        return error_response(400, gettext("Send one setting at a time to this address."))
    submitted = SettingsForm()
    field = submitted[field_name]
    if not field.validate(submitted):
        return _rejected(pref, list(field.errors))
    try:
        saved = service.update_settings(current_user.id, {pref.key: field.data})
    except registry.ValidationError as exc:
        return _rejected(pref, [text for messages in exc.errors.values() for text in messages])
    return _saved(pref, saved)


@bp.get("/settings/last-saved")
def last_saved() -> ResponseReturnValue:
    """When the settings were last saved, in the user's zone; htmx refreshes it after a save."""
    settings = current_user.settings
    form = SettingsForm.from_settings(settings.values)
    return render_page_or_fragment(PAGE, LAST_SAVED, form=form, settings=settings)


def _flash_saved(settings: service.Settings) -> None:
    """Flash "Saved" in the language just chosen, which the next page is rendered in."""
    with force_locale(settings.values["locale"]):
        flash(gettext("Saved"), "success")


def _saved(pref: Preference, saved: service.Settings) -> ResponseReturnValue:
    """The answer to a successful single-setting save."""
    if not is_htmx_request():
        _flash_saved(saved)
        return redirect(url_for("settings.index"), code=303)
    if saved.values["locale"] != current_user.settings.values["locale"]:
        # Every string on the page changes language: reload it rather than swap one field.
        _flash_saved(saved)
        response: Response = make_response("", 200)
        response.headers["HX-Refresh"] = "true"
        response.vary.add("HX-Request")
        return response
    form = SettingsForm.from_settings(saved.values)
    response = _render_field(form, pref, saved, 200, gettext("Saved"))
    # theme.js restyles the page from this event; the "last saved" line refreshes on it.
    return trigger(response, {"settings-saved": {pref.key: saved.values[pref.key]}})


def _rejected(pref: Preference, errors: list[str]) -> ResponseReturnValue:
    """422: the field as the server has it (htmx) or as submitted (page), with the errors."""
    settings = current_user.settings
    form = SettingsForm.from_settings(settings.values)
    field = form[pref.field_name]
    if not is_htmx_request():
        # Without script the whole page comes back, keeping what the person chose.
        field.process(request.form)
    field.errors = errors
    message = gettext(
        "%(setting)s was not saved: %(reason)s", setting=pref.label, reason=" ".join(errors)
    )
    return _render_field(form, pref, settings, 422, message)


def _render_field(
    form: SettingsFormBase,
    pref: Preference,
    settings: service.Settings,
    status: int,
    announcement: str,
) -> Response:
    """One field's fragment for htmx (the page otherwise), with a live-region message."""
    context: dict[str, Any] = {"form": form, "field": form[pref.field_name], "settings": settings}
    if is_htmx_request():
        # Only the fragment carries the out-of-band message; a full page shows it in place.
        context["announcement"] = announcement
    return render_page_or_fragment(PAGE, FIELD, status, **context)
