"""Health check for load balancers and operators."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.preferences.cache import entries as cache

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """JSON with the state of the database and the cache; 503 only when the database is down.

    A degraded cache still lets every request succeed, so it does not fail the check.
    """
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        database = {"status": "ok"}
    except DBAPIError as exc:
        db.session.rollback()
        database = {"status": "down", "error": type(exc.orig).__name__}
    healthy = database["status"] == "ok"
    # Counting pending invalidations would wait for an unreachable database a second time.
    cache_state = cache.health(count_pending=healthy)
    body = {"status": "ok" if healthy else "down", "database": database, "cache": cache_state}
    if healthy and cache_state["status"] != "ok":
        body["status"] = "degraded"
    return jsonify(body), 200 if healthy else 503
