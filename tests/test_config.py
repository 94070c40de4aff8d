"""Configuration from the environment and the production safety checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app import config, create_app


def test_no_configuration_means_sqlite_and_in_process_cache() -> None:
    values = config.build_config({"REDIS_URL": None, "SECRET_KEY": "x"})
    assert values["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert values["SQLALCHEMY_DATABASE_URI"].endswith("instance/app.db")
    assert values["CACHE_TYPE"] == "SimpleCache"
    assert values["RATELIMIT_STORAGE_URI"] == "memory://"


def test_redis_url_selects_redis_with_short_timeouts() -> None:
    values = config.build_config({"REDIS_URL": "redis://cache:6379/2", "SECRET_KEY": "x"})
    assert values["CACHE_TYPE"] == "RedisCache"
    assert values["CACHE_REDIS_URL"] == "redis://cache:6379/2"
    assert values["CACHE_OPTIONS"]["socket_timeout"] <= 0.1
    assert values["CACHE_OPTIONS"]["retry"] is None
    assert values["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        ("postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_use_psycopg_3(raw: str, expected: str) -> None:
    assert config.database_url(raw) == expected


def test_production_refuses_to_start_without_secret_key() -> None:
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": None})


def test_production_hardens_cookies_and_sets_hsts() -> None:
    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "s" * 32,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "TRUSTED_HOSTS": ["settings.example.com"],
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    client = app.test_client()
    response = client.get("/healthz", base_url="https://settings.example.com")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert client.get("/healthz", base_url="https://evil.example").status_code == 400


def test_development_keeps_a_secret_key_under_instance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first: dict[str, Any] = config.build_config({"SECRET_KEY": None})
    second: dict[str, Any] = config.build_config({"SECRET_KEY": None})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_wsgi_module_builds_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    import importlib

    import wsgi

    module = importlib.reload(wsgi)
    assert module.app.name == "app"
