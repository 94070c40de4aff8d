"""The dashboard: a server-rendered shell for the single-page client of the JSON API."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from app.preferences import registry, zones
from app.preferences.session import signed_in
from app.preferences.snapshot import Settings
from app.web.forms import SettingsForm, zone_choices

bp = Blueprint("dashboard", __name__)


def poll_milliseconds() -> int:
    """The poll interval for ``data-poll-ms``, from ``DASHBOARD_POLL_SECONDS``."""
    seconds = float(current_app.config["DASHBOARD_POLL_SECONDS"])
    # Below a tenth of a second a poll is a busy loop, whatever the configuration says.
    return max(100, round(seconds * 1000))


def value_labels() -> dict[str, dict[str, str]]:
    """Display names of every choice, by dotted key, in the request's language.

    The client renders values it receives from the API with these, so no English is
    hard-coded in JavaScript and a new choice in the registry needs no client change. Zones
    read as on the settings page: the place and its offset now.
    """
    zone_labels = {choice.value: choice.label for choice in zone_choices()}
    return {
        pref.key: zone_labels
        if pref.options is zones.time_zones
        else {value: pref.label_for(value) for value in pref.allowed()}
        for pref in registry.PREFERENCES
        if pref.options is not None
    }


@bp.get("/dashboard")
def index() -> ResponseReturnValue:
    """The dashboard shell, already showing the settings; ``dashboard.js`` keeps it live."""
    # The session's cached snapshot, so a warm cache means no SQL for this page.
    settings: Settings = signed_in().settings
    document: dict[str, Any] = settings.as_json()
    poll_ms = poll_milliseconds()
    return render_template(
        "dashboard/index.html",
        form=SettingsForm.from_settings(settings.values),
        settings=settings,
        document=document,
        labels=value_labels(),
        preferences=registry.PREFERENCES,
        poll_ms=poll_ms,
        poll_seconds=max(1, math.ceil(poll_ms / 1000)),
    )
