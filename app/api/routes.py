"""The JSON API: the signed-in user's settings, their schema and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user

bp = Blueprint("api", __name__)


@bp.get("/user/settings")
def get_settings() -> ResponseReturnValue:
    """The current settings."""
    return jsonify(current_user.settings.as_json())
