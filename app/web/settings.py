"""The settings page and its htmx fragments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from app import bodies
from app.api.routes import IMPORT_MAX_BYTES, parse_json
from app.errors import error_response
from app.htmx import is_htmx_request, render_page_or_fragment, trigger
from app.models import MAX_ID
from app.preferences import registry, service, validation
from app.preferences.forms import SettingsForm, SettingsFormBase
from app.preferences.registry import Preference
from app.ratelimits import settings_writes
from app.text import gettext, ngettext
from app.web import changes

bp = Blueprint("settings", __name__)

PAGE = "settings/index.html"
FORM = "settings/_form.html"
FIELD = "settings/_field.html"
LAST_SAVED = "settings/_last_saved.html"
HISTORY = "settings/_history.html"
HISTORY_PAGE = "settings/history.html"
IMPORT = "settings/_import.html"

# Body limits of the import pages: the upload holds a file of up to ``IMPORT_MAX_BYTES``
# plus multipart framing; the confirm step carries the document form-encoded, where a
# quote takes three bytes. Both are over the app-wide ``MAX_CONTENT_LENGTH``.
bodies.allow("settings.import_preview", IMPORT_MAX_BYTES + 8 * 1024)
bodies.allow("settings.import_confirm", 3 * IMPORT_MAX_BYTES + 8 * 1024)

#: How many characters of a submitted field name are echoed back in a message.
MAX_ECHO = 40


@dataclass
class ImportState:
    """An uploaded document on its way in: what is wrong with it, or what it would change."""

    #: One plain sentence saying why the file cannot be imported; empty when it can.
    problem: str = ""
    #: What exactly is wrong, for the curious, behind a disclosure.
    details: list[str] = field(default_factory=list)
    changes: list[changes.ChangeRow] = field(default_factory=list)
    #: The document as uploaded, carried by the confirm form in a hidden field.
    document: str = ""
    #: The settings version the preview was made against, carried by the confirm form.
    version: int | None = None
    #: Why the preview is shown again, if it is.
    notice: str = ""


@bp.get("/settings")
def index() -> ResponseReturnValue:
    """The settings page, from the cached snapshot: no SQL while the cache is warm."""
    return _render_current(FORM)


@bp.post("/settings")
@settings_writes
def save() -> ResponseReturnValue:
    """Save the whole form (no script): back to the page with "Saved", or 422 with errors."""
    settings = current_user.settings
    form = SettingsForm()
    unknown = form.unknown_fields(request.form.keys())
    if unknown:
        names = ", ".join(name[:MAX_ECHO] for name in unknown[:3])
        form.form_errors.append(gettext("There is no setting called %(names)s.", names=names))
    elif form.validate():
        # Only what the person changed on the page, and only where it differs, is stored:
        # keys left alone keep following their defaults and what other windows saved.
        changes = {
            key: value for key, value in form.edited().items() if value != settings.values[key]
        }
        try:
            saved = service.update_settings(
                current_user.id,
                changes,
                known=current_user.snapshot,
                source="page",
                seen=form.seen(),
            )
        except validation.ValidationError as exc:
            form.add_errors(exc.errors)
        except service.ConflictingChange as exc:
            return _conflict(exc)
        else:
            _flash_saved(saved)
            return redirect(url_for("settings.index"), code=303)
    return render_page_or_fragment(PAGE, FORM, 422, form=form, settings=settings)


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
        pref = registry.BY_KEY[key]
        value = changes.display_value(key, conflict.current[key])
        form[pref.field_name].errors = [
            gettext("Changed elsewhere meanwhile; it is now %(value)s.", value=value)
        ]
    return render_page_or_fragment(PAGE, FORM, 409, form=form, settings=current_user.settings)


@bp.post("/settings/<field_name>")
@settings_writes
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
        saved = service.update_settings(
            current_user.id, {pref.key: field.data}, known=current_user.snapshot, source="page"
        )
    except validation.ValidationError as exc:
        return _rejected(pref, [text for messages in exc.errors.values() for text in messages])
    return _saved(pref, saved)


@bp.get("/settings/last-saved")
def last_saved() -> ResponseReturnValue:
    """When the settings were last saved, in the user's zone; htmx refreshes it after a save."""
    return _render_current(LAST_SAVED)


def _render_current(fragment: str) -> ResponseReturnValue:
    """The page, or ``fragment`` for htmx, showing the settings as currently saved."""
    settings = current_user.settings
    form = SettingsForm.from_settings(settings.values)
    return render_page_or_fragment(PAGE, fragment, form=form, settings=settings)


@bp.get("/settings/history")
def history() -> ResponseReturnValue:
    """The latest changes, older ones a page at a time (``?before=<id>``).

    htmx asks for the list alone, and again after each save.
    """
    before = request.args.get("before", "")
    digits = before.isascii() and before.isdigit() and len(before) < 19
    before_id = min(int(before), MAX_ID) if digits else None
    found = service.history(current_user.id, before_id=before_id, limit=changes.RECENT + 1)
    recent = found[: changes.RECENT]
    older = recent[-1].id if len(found) > changes.RECENT else None
    return render_page_or_fragment(
        HISTORY_PAGE, HISTORY, history=changes.rows(recent), older=older, paged=before_id
    )


@bp.post("/settings/import")
def import_preview() -> ResponseReturnValue:
    """Check an uploaded export and show what importing it would change, with a confirm."""
    upload = request.files.get("file")
    state = _preview(_read_upload(upload) if upload and upload.filename else None)
    return _render_import(state, 422 if state.problem else 200)


@bp.errorhandler(RequestEntityTooLarge)
def body_too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """413: for an upload, the import card saying so, with script or without."""
    if request.endpoint != "settings.import_preview":
        return error_response(413)
    return _render_import(ImportState(problem=_too_large()), 413)


@bp.post("/settings/import/confirm")
@settings_writes
def import_confirm() -> ResponseReturnValue:
    """Apply a previewed document, all or nothing; back to the page with what changed."""
    text = request.form.get("document", "")
    state = ImportState(document=text)
    document = _parse_document(text.encode(), state)
    previewed = request.form.get("version", "")
    if not state.problem:
        try:
            result = service.import_document(
                current_user.id,
                document,
                known=current_user.snapshot,
                expected_version=int(previewed)
                if previewed.isascii() and previewed.isdigit()
                else None,
            )
        except validation.ValidationError as exc:
            state = _refused(exc.errors)
        except service.VersionMismatch:
            # The preview no longer says what importing does: show what it would do now.
            state = _preview(text.encode())
            state.notice = gettext(
                "Your settings changed after the preview, so nothing was imported. "
                "This is what importing the file would change now."
            )
            return _render_import(state, 409)
        else:
            with force_locale(result.settings.values["locale"]):
                count = len(result.changes)
                flash(
                    ngettext(
                        "Imported: %(num)d setting changed.",
                        "Imported: %(num)d settings changed.",
                        count,
                    )
                    if count
                    else gettext("Imported: nothing needed to change."),
                    "success",
                )
            return redirect(url_for("settings.index"), code=303)
    return _render_import(state, 422)


def _too_large() -> str:
    """Why a file over the import's limit cannot be imported, in plain words."""
    return gettext(
        "The file is larger than %(size)d KB: a settings file exported from this app is "
        "much smaller.",
        size=IMPORT_MAX_BYTES // 1024,
    )


def _not_an_export(details: list[str]) -> ImportState:
    """The state of a file that is not a settings export at all."""
    return ImportState(
        problem=gettext("This isn't a settings file exported from this app."), details=details
    )


def _read_upload(upload: FileStorage) -> bytes | ImportState:
    """The uploaded file's bytes, or why it cannot be used."""
    data = upload.stream.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        return ImportState(problem=_too_large())
    return data


def _parse_document(data: bytes, state: ImportState) -> Any:
    """The JSON in ``data``; what is wrong goes to ``state`` instead."""
    if len(data) > IMPORT_MAX_BYTES:
        state.problem = _too_large()
        return None
    try:
        return parse_json(data)
    except ValueError as exc:
        refused = _not_an_export(
            [gettext("The file is not valid JSON: %(reason)s.", reason=str(exc))]
        )
        state.problem, state.details = refused.problem, refused.details
        return None


def _refused(errors: validation.Errors) -> ImportState:
    """The state of a document the import refused: not an export, or holding bad values."""
    details = _messages(errors)
    # Members of the document itself (format, version, anything unknown) say what it is.
    if any(key not in registry.BY_KEY for key in errors):
        return _not_an_export(details)
    return ImportState(
        problem=gettext("Some settings in this file cannot be used, so nothing was imported."),
        details=details,
    )


def _preview(upload: bytes | ImportState | None) -> ImportState:
    """What an upload would change, as a dry run of the import."""
    if upload is None:
        return ImportState(problem=gettext("Choose a file to import."))
    if isinstance(upload, ImportState):
        return upload
    state = ImportState(document=upload.decode("utf-8", errors="replace"))
    document = _parse_document(upload, state)
    if state.problem:
        state.document = ""
        return state
    try:
        result = service.import_document(current_user.id, document, dry_run=True)
    except validation.ValidationError as exc:
        return _refused(exc.errors)
    state.changes = changes.rows(result.changes)
    state.version = result.settings.version
    return state


def _messages(errors: validation.Errors) -> list[str]:
    """Validation errors as sentences, each naming its dotted key."""
    return [
        f"{key}: {message}" if key else message
        for key, messages in errors.items()
        for message in messages
    ]


def _render_import(state: ImportState, status: int) -> Response:
    """The import card (htmx) or the settings page with it, showing ``state``."""
    settings = current_user.settings
    form = SettingsForm.from_settings(settings.values)
    announcement = (
        state.problem
        if state.problem
        else ngettext(
            "Importing would change %(num)d setting.",
            "Importing would change %(num)d settings.",
            len(state.changes),
        )
    )
    return render_page_or_fragment(
        PAGE,
        IMPORT,
        status,
        form=form,
        settings=settings,
        import_state=state,
        announcement=announcement if is_htmx_request() else None,
    )


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
    context: dict[str, Any] = {
        "form": form,
        "field": form[pref.field_name],
        "settings": settings,
        # Shown beside the control for a moment; the live region says it too.
        "saved": status == 200,
    }
    if is_htmx_request():
        # Only the fragment carries the out-of-band message; a full page shows it in place.
        context["announcement"] = announcement
    return render_page_or_fragment(PAGE, FIELD, status, **context)
