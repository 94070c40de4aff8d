"""bp "transfer": importing an exported settings file on the settings page, with a preview."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import error_response
from app.http import bodies
from app.http.htmx import is_htmx_request
from app.http.json_body import parse_json
from app.preferences import display, registry, transfer, validation, writes
from app.preferences.session import signed_in
from app.ratelimits import settings_writes
from app.text import gettext, ngettext
from app.web import page

bp = Blueprint("transfer", __name__)

IMPORT = "settings/_import.html"
MAX_BYTES = transfer.IMPORT_MAX_BYTES

# The upload holds a file of up to ``MAX_BYTES`` plus multipart framing; the confirm step
# carries the document form-encoded, where a quote takes three bytes. Both are over the
# app-wide ``MAX_CONTENT_LENGTH``.
bodies.allow("transfer.import_preview", MAX_BYTES + 8 * 1024)
bodies.allow("transfer.import_confirm", 3 * MAX_BYTES + 8 * 1024)


@dataclass
class ImportState:
    """An uploaded document on its way in: what is wrong with it, or what it would change."""

    #: One plain sentence saying why the file cannot be imported; empty when it can.
    problem: str = ""
    #: What exactly is wrong, for the curious, behind a disclosure.
    details: list[str] = field(default_factory=list)
    changes: list[display.ChangeRow] = field(default_factory=list)
    #: The document as uploaded, carried by the confirm form in a hidden field.
    document: str = ""
    #: The settings version the preview was made against, carried by the confirm form.
    version: int | None = None
    #: Why the preview is shown again, if it is.
    notice: str = ""


@bp.post("/settings/import")
def import_preview() -> ResponseReturnValue:
    """Check an uploaded export and show what importing it would change, with a confirm."""
    upload = request.files.get("file")
    state = _preview(_read_upload(upload) if upload and upload.filename else None)
    return _render(state, 422 if state.problem else 200)


@bp.errorhandler(RequestEntityTooLarge)
def body_too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """413: for an upload, the import card saying so, with script or without."""
    if request.endpoint != "transfer.import_preview":
        return error_response(413)
    return _render(ImportState(problem=_too_large()), 413)


@bp.post("/settings/import/confirm")
@settings_writes
def import_confirm() -> ResponseReturnValue:
    """Apply a previewed document, all or nothing; back to the page with what changed."""
    text = request.form.get("document", "")
    state = ImportState(document=text)
    document = _parse_document(text.encode(), state)
    if state.problem:
        return _render(state, 422)
    previewed = request.form.get("version", "")
    try:
        result = transfer.import_document(
            signed_in().snapshot,
            document,
            expected_version=int(previewed)
            if previewed.isascii() and previewed.isdigit()
            else None,
        )
    except validation.ValidationError as exc:
        return _render(_refused(exc.for_pages()), 422)
    except writes.VersionMismatch:
        # The preview no longer says what importing does: show what it would do now.
        state = _preview(text.encode())
        state.notice = gettext(
            "Your settings changed after the preview, so nothing was imported. "
            "This is what importing the file would change now."
        )
        return _render(state, 409)
    _flash_imported(result)
    return redirect(url_for("settings.index"), code=303)


def _flash_imported(result: transfer.ImportResult) -> None:
    """Say what the import changed, in the language it may just have chosen."""
    with force_locale(result.settings.values["locale"]):
        count = len(result.changes)
        flash(
            ngettext(
                "Imported: %(num)d setting changed.", "Imported: %(num)d settings changed.", count
            )
            if count
            else gettext("Imported: nothing needed to change."),
            "success",
        )


def _too_large() -> str:
    """Why a file over the import's limit cannot be imported, in plain words."""
    return gettext(
        "The file is larger than %(size)d KB: a settings file exported from this app is "
        "much smaller.",
        size=MAX_BYTES // 1024,
    )


def _not_an_export(details: list[str]) -> ImportState:
    """The state of a file that is not a settings export at all."""
    return ImportState(
        problem=gettext("This isn't a settings file exported from this app."), details=details
    )


def _read_upload(upload: FileStorage) -> bytes | ImportState:
    """The uploaded file's bytes, or why it cannot be used."""
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return ImportState(problem=_too_large())
    return data


def _parse_document(data: bytes, state: ImportState) -> Any:
    """The JSON in ``data``; what is wrong goes to ``state`` instead."""
    if len(data) > MAX_BYTES:
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
    details = [
        f"{key}: {message}" if key else message
        for key, messages in errors.items()
        for message in messages
    ]
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
        result = transfer.import_document(signed_in().id, document, dry_run=True)
    except validation.ValidationError as exc:
        return _refused(exc.for_pages())
    state.changes = display.rows(result.changes)
    state.version = result.settings.version
    return state


def _render(state: ImportState, status: int) -> Response:
    """The import card (htmx) or the settings page with it, showing ``state``."""
    announcement = state.problem or ngettext(
        "Importing would change %(num)d setting.",
        "Importing would change %(num)d settings.",
        len(state.changes),
    )
    return page.render(
        IMPORT,
        status,
        import_state=state,
        announcement=announcement if is_htmx_request() else None,
    )
