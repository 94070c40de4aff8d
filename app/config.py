"""Configuration read from the environment, with safe defaults for a laptop."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, ClassVar

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    """Read a number from the environment."""
    value = os.environ.get(name)
    return float(value) if value else default


def database_url(raw: str | None) -> str:
    """Normalise a database URL so PostgreSQL always goes through psycopg 3.

    Hosting platforms hand out ``postgres://`` and ``postgresql://`` URLs, which SQLAlchemy
    would route to psycopg2; we ship psycopg 3.
    """
    if not raw:
        return f"sqlite:///{INSTANCE_DIR / 'app.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def development_secret_key() -> str:
    """Return a secret key kept under ``instance/`` so sessions survive restarts on a laptop."""
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def redis_cache_options(socket_timeout: float) -> dict[str, Any]:
    """Options for the redis-py client behind Flask-Caching.

    redis-py waits seconds and retries on a refused or hanging server by default; a cache
    that is slower than the database is worse than none, so every operation gets a short
    timeout and no retries. The circuit breaker in ``preferences.cache`` then stops asking.
    """
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry_on_timeout": False,
        "retry": None,
        "health_check_interval": 0,
    }


class Config:
    """Settings shared by every environment, each read from the environment."""

    APP_ENV: str = os.environ.get("APP_ENV", "development")
    SECRET_KEY: str | None = os.environ.get("SECRET_KEY")

    SQLALCHEMY_DATABASE_URI: str = database_url(os.environ.get("DATABASE_URL"))
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True}

    REDIS_URL: str | None = os.environ.get("REDIS_URL")
    # Per-operation budget for Redis, in seconds: a slow cache must cost milliseconds.
    CACHE_SOCKET_TIMEOUT: float = _env_float("CACHE_SOCKET_TIMEOUT", 0.05)
    # After a Redis failure, skip the cache for this long before trying again.
    CACHE_RETRY_AFTER: float = _env_float("CACHE_RETRY_AFTER", 5.0)
    # How long the cache is trusted before pending invalidations are checked again.
    CACHE_TRUST_TTL: int = int(os.environ.get("CACHE_TRUST_TTL", "30"))
    SETTINGS_CACHE_TTL: int = int(os.environ.get("SETTINGS_CACHE_TTL", "300"))
    CACHE_KEY_PREFIX: str = os.environ.get("CACHE_KEY_PREFIX", "")

    # A rate limiter outage must not lock everyone out: fall back to per-process counting.
    RATELIMIT_SWALLOW_ERRORS: bool = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED: bool = True
    RATELIMIT_LOGIN: str = os.environ.get("RATELIMIT_LOGIN", "5 per minute; 20 per hour")

    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    SESSION_COOKIE_SECURE: bool = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY: bool = True
    REMEMBER_COOKIE_SAMESITE: str = "Lax"
    REMEMBER_COOKIE_SECURE: bool = _env_bool("SESSION_COOKIE_SECURE", False)

    # Flask-WTF's token lives as long as the session; a time limit only breaks open tabs.
    WTF_CSRF_TIME_LIMIT: int | None = None
    WTF_CSRF_HEADERS: ClassVar[list[str]] = ["X-CSRFToken"]

    BABEL_DEFAULT_LOCALE: str = "en"
    BABEL_DEFAULT_TIMEZONE: str = "UTC"

    # Applied to every environment: a settings body is tiny, so 16 KiB is generous.
    MAX_CONTENT_LENGTH: int = 16 * 1024
    # Host names this deployment answers to, comma-separated; others get 400.
    TRUSTED_HOSTS: ClassVar[list[str] | None] = [
        host.strip() for host in os.environ.get("TRUSTED_HOSTS", "").split(",") if host.strip()
    ] or None
    HSTS_SECONDS: int = int(os.environ.get("HSTS_SECONDS", "0"))

    DEMO_USER_EMAIL: str = "demo@example.com"


def build_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect the configuration for one app, environment first and ``overrides`` last.

    :raise RuntimeError: production mode without a ``SECRET_KEY``.
    """
    values = {key: getattr(Config, key) for key in dir(Config) if key.isupper()}
    values.update(overrides or {})

    if values["APP_ENV"] == "production":
        if not values["SECRET_KEY"]:
            raise RuntimeError("SECRET_KEY must be set when APP_ENV=production.")
        values.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
        values["HSTS_SECONDS"] = values["HSTS_SECONDS"] or 31536000
    elif not values["SECRET_KEY"]:
        values["SECRET_KEY"] = development_secret_key()

    values["SQLALCHEMY_DATABASE_URI"] = database_url(values["SQLALCHEMY_DATABASE_URI"])
    redis_url = values["REDIS_URL"]
    if redis_url:
        values.setdefault("CACHE_TYPE", "RedisCache")
        values.setdefault("CACHE_REDIS_URL", redis_url)
        values.setdefault("CACHE_OPTIONS", redis_cache_options(values["CACHE_SOCKET_TIMEOUT"]))
        values.setdefault("RATELIMIT_STORAGE_URI", redis_url)
        values.setdefault(
            "RATELIMIT_STORAGE_OPTIONS",
            {"socket_timeout": values["CACHE_SOCKET_TIMEOUT"], "socket_connect_timeout": 0.2},
        )
    else:
        values.setdefault("CACHE_TYPE", "SimpleCache")
        values.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    values.setdefault("CACHE_DEFAULT_TIMEOUT", values["SETTINGS_CACHE_TTL"])
    return values
