"""The settings page as the settings and transfer views render it, whole or as a fragment."""

from __future__ import annotations

from typing import Any

from flask import Response

from app.http.htmx import render_page_or_fragment
from app.preferences.session import signed_in
from app.web.forms import SettingsForm, SettingsFormBase

PAGE = "settings/index.html"


def render(
    fragment: str, status: int = 200, form: SettingsFormBase | None = None, **context: Any
) -> Response:
    """The settings page, or ``fragment`` of it for htmx, showing the signed-in user's settings.

    :param form: the form to show; by default the settings as currently saved.
    """
    settings = signed_in().settings
    if form is None:
        form = SettingsForm.from_settings(settings.values)
    return render_page_or_fragment(PAGE, fragment, status, form=form, settings=settings, **context)
