"""``/healthz``: the database and the cache, for load balancers and operators."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from app.preferences.cache import entries as cache
from tests.conftest import make_config


def test_healthy_with_redis(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": {"status": "ok"},
        "cache": {
            "backend": "redis",
            "breaker": "closed",
            "status": "ok",
            "pending_invalidations": 0,
        },
    }


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": None}])
def test_healthy_with_the_in_process_cache(client: FlaskClient) -> None:
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["cache"] == {"backend": "in-process", "status": "ok", "pending_invalidations": 0}


@pytest.mark.parametrize("config_overrides", [{"REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_cache_down_is_degraded_but_serving(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        response = client.get("/healthz")
        # A degraded cache does not take the instance out of the load balancer.
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "degraded"
        assert body["database"] == {"status": "ok"}
        assert body["cache"]["status"] == "degraded"
        assert body["cache"]["breaker"] == "open"
    warnings = [r for r in caplog.records if r.name == "app.preferences.cache"]
    assert len(warnings) == 1


def test_database_down_is_503(key_prefix: str) -> None:
    app: Flask = create_app(
        make_config("postgresql+psycopg://postgres@127.0.0.1:1/none", key_prefix)
    )
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "down"
        assert body["database"]["status"] == "down"
        # Redis answers, but without the database nothing can confirm its entries.
        assert body["cache"]["status"] == "degraded"
        assert body["cache"]["pending_invalidations"] is None
    finally:
        cache.shutdown(app)
        with app.app_context():
            db.engine.dispose()


def test_healthz_needs_no_sign_in(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content_type.startswith("application/json")
