"""Configuration read from the environment, with safe defaults for a laptop."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any, ClassVar

from redis.backoff import NoBackoff
from redis.retry import Retry

PACKAGE_DIR = Path(__file__).resolve().parent
#: An installed wheel carries templates/, static/ and migrations/ inside the package
#: (pyproject.toml maps them there); a checkout keeps them beside it.
INSTALLED = (PACKAGE_DIR / "templates").is_dir()
RESOURCES_DIR = PACKAGE_DIR if INSTALLED else PACKAGE_DIR.parent
#: Where a development setup keeps its SQLite file and secret key: beside the checkout, or
#: where Flask puts an installed package's instance folder, never inside site-packages.
INSTANCE_DIR = (
    Path(sys.prefix) / "var" / "app-instance" if INSTALLED else PACKAGE_DIR.parent / "instance"
)

#: The body limit of every request but the imports: a settings body is tiny.
MAX_BODY_BYTES = 16 * 1024
#: Writes of one user's settings allowed unless ``RATELIMIT_WRITES`` says otherwise.
DEFAULT_WRITE_LIMIT = "30 per 10 seconds; 1000 per hour"
#: ``LOG_FORMAT`` values: readable lines, or one JSON object per line for log collectors.
TEXT_LOGS = "text"
JSON_LOGS = "json"


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


def _env_nodes(name: str) -> list[tuple[str, int]]:
    """Read ``host:port,host:port`` from the environment."""
    nodes = []
    for item in os.environ.get(name, "").split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            nodes.append((host, int(port)))
    return nodes


def redis_cache_options(socket_timeout: float, cache_type: str = "RedisCache") -> dict[str, Any]:
    """Options for the redis-py client behind Flask-Caching's Redis backends.

    redis-py waits seconds and retries on a refused or hanging server by default; a cache
    that is slower than the database is worse than none, so every operation gets a short
    timeout and no retries. The circuit breaker in ``preferences.cache`` then stops asking.
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 0,
    }
    if cache_type == "RedisClusterCache":
        # RedisCluster takes ``retry`` for itself, where ``None`` means three retries with
        # backoff of up to seconds, and refuses a connection-level one.
        options["retry"] = Retry(NoBackoff(), 0)
    else:
        # For a plain connection ``None`` means no retries at all.
        options["retry"] = None
    if cache_type == "RedisSentinelCache":
        # Flask-Caching hands ``sentinel_*`` options to the connections to the sentinels.
        options.update(
            sentinel_socket_timeout=socket_timeout,
            sentinel_socket_connect_timeout=socket_timeout,
            sentinel_retry=None,
        )
    return options


def ratelimit_storage(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where the sign-in throttles keep their counters: the same Redis as the cache, or memory.

    Short timeouts here too: a failure makes them count in memory, but only after the failed
    call has returned.
    """
    timeout = values["CACHE_SOCKET_TIMEOUT"]
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": max(timeout, 0.2),
    }
    cache_type = values["CACHE_TYPE"]
    if cache_type == "RedisSentinelCache":
        hosts = ",".join(f"{host}:{port}" for host, port in values["CACHE_REDIS_SENTINELS"])
        options["sentinel_kwargs"] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": options["socket_connect_timeout"],
        }
        if values.get("CACHE_REDIS_SENTINEL_PASSWORD"):
            options["sentinel_kwargs"]["password"] = values["CACHE_REDIS_SENTINEL_PASSWORD"]
        if values.get("CACHE_REDIS_PASSWORD"):
            options["password"] = values["CACHE_REDIS_PASSWORD"]
        return f"redis+sentinel://{hosts}/{values['CACHE_REDIS_SENTINEL_MASTER']}", options
    if cache_type == "RedisClusterCache":
        options["retry"] = Retry(NoBackoff(), 0)
        if values.get("CACHE_REDIS_CLUSTER"):
            return f"redis+cluster://{values['CACHE_REDIS_CLUSTER']}", options
        url = str(values["CACHE_REDIS_URL"])
        return "redis+cluster://" + url.partition("://")[2], options
    if cache_type == "RedisCache":
        url = values.get("CACHE_REDIS_URL") or "redis://{}:{}/{}".format(
            values.get("CACHE_REDIS_HOST", "localhost"),
            values.get("CACHE_REDIS_PORT", 6379),
            values.get("CACHE_REDIS_DB", 0),
        )
        return str(url), options
    return "memory://", {}


class Config:
    """Settings shared by every environment, each read from the environment."""

    APP_ENV: str = os.environ.get("APP_ENV", "development")
    SECRET_KEY: str | None = os.environ.get("SECRET_KEY")

    SQLALCHEMY_DATABASE_URI: str = database_url(os.environ.get("DATABASE_URL"))
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {}
    # PostgreSQL only (app/database.py): the longest a request waits to connect and for
    # each statement, and the server-side bound on a lock wait. A hanging database then
    # costs a request at most about twice DATABASE_TIMEOUT.
    DATABASE_TIMEOUT: float = _env_float("DATABASE_TIMEOUT", 1.0)
    DATABASE_LOCK_TIMEOUT: float = _env_float("DATABASE_LOCK_TIMEOUT", 0.5)

    # The settings cache: see docs/caching.md. One Redis (REDIS_URL), Sentinel
    # (REDIS_SENTINELS) or Cluster (REDIS_CLUSTER); none means an in-process cache.
    REDIS_URL: str | None = os.environ.get("REDIS_URL")
    REDIS_SENTINELS: ClassVar[list[tuple[str, int]]] = _env_nodes("REDIS_SENTINELS")
    REDIS_SENTINEL_MASTER: str = os.environ.get("REDIS_SENTINEL_MASTER", "mymaster")
    REDIS_CLUSTER: str | None = os.environ.get("REDIS_CLUSTER")
    REDIS_PASSWORD: str | None = os.environ.get("REDIS_PASSWORD")
    REDIS_SENTINEL_PASSWORD: str | None = os.environ.get("REDIS_SENTINEL_PASSWORD")
    # Flask-Caching backend; derived from the variables above unless set explicitly.
    CACHE_TYPE: str | None = os.environ.get("CACHE_TYPE")
    # Per-operation budget for Redis, in seconds: a slow cache must cost milliseconds.
    CACHE_SOCKET_TIMEOUT: float = _env_float("CACHE_SOCKET_TIMEOUT", 0.05)
    # After a Redis failure, skip the cache for this long before trying again.
    CACHE_RETRY_AFTER: float = _env_float("CACHE_RETRY_AFTER", 5.0)
    # Lifetime of the trusted marker that housekeeping renews outside requests; a write
    # that cannot reach Redis waits this long (plus 0.1 s) before it returns.
    CACHE_TRUST_TTL: float = _env_float("CACHE_TRUST_TTL", 0.5)
    SETTINGS_CACHE_TTL: int = int(os.environ.get("SETTINGS_CACHE_TTL", "300"))
    CACHE_KEY_PREFIX: str = os.environ.get("CACHE_KEY_PREFIX", "")
    # Before the sign-in throttles' keys, for apps that share one Redis.
    RATELIMIT_KEY_PREFIX: str = os.environ.get("RATELIMIT_KEY_PREFIX", "")

    # Failed sign-ins per client address; sign-ups (each costs a password hash) likewise.
    RATELIMIT_LOGIN: str = os.environ.get("RATELIMIT_LOGIN", "5 per minute; 20 per hour")
    RATELIMIT_REGISTER: str = os.environ.get("RATELIMIT_REGISTER", "3 per minute; 10 per hour")
    # Per account: this many failed sign-ins are free, then each attempt waits twice as
    # long as the one before, from one second up to SIGNIN_MAX_DELAY seconds.
    SIGNIN_FREE_FAILURES: int = int(os.environ.get("SIGNIN_FREE_FAILURES", "5"))
    SIGNIN_MAX_DELAY: float = _env_float("SIGNIN_MAX_DELAY", 60.0)
    # Writes of one user's settings (API, pages, imports): a burst and an hourly budget,
    # far above what a person on the dashboard or the settings page does.
    RATELIMIT_WRITES: str = os.environ.get("RATELIMIT_WRITES", DEFAULT_WRITE_LIMIT)

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
    MAX_CONTENT_LENGTH: int = MAX_BODY_BYTES
    # How many reverse proxies stand in front of the app: their X-Forwarded-For, -Proto and
    # -Host are trusted that many hops deep (Werkzeug's ProxyFix). 0 trusts none, so a
    # client cannot forge its address; set it to match gunicorn's forwarded_allow_ips.
    TRUSTED_PROXIES: int = int(os.environ.get("TRUSTED_PROXIES", "0"))
    # Host names this deployment answers to, comma-separated; others get 400.
    TRUSTED_HOSTS: ClassVar[list[str] | None] = [
        host.strip() for host in os.environ.get("TRUSTED_HOSTS", "").split(",") if host.strip()
    ] or None
    HSTS_SECONDS: int = int(os.environ.get("HSTS_SECONDS", "0"))

    # How long the change history keeps an entry; `flask preferences prune-history` deletes
    # older ones (run it daily from cron or a scheduler).
    HISTORY_RETENTION_DAYS: int = int(os.environ.get("HISTORY_RETENTION_DAYS", "365"))

    # How the app's log lines look on stderr: "text", or "json" for one object per line.
    LOG_FORMAT: str = os.environ.get("LOG_FORMAT", TEXT_LOGS).strip().lower()

    DEMO_USER_EMAIL: str = "demo@example.com"
    # How often an open dashboard or settings page asks whether another device changed
    # something; an unchanged answer is a 304.
    DASHBOARD_POLL_SECONDS: float = _env_float("DASHBOARD_POLL_SECONDS", 10.0)


def build_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect the configuration for one app, environment first and ``overrides`` last.

    :raise RuntimeError: production mode without a ``SECRET_KEY``.
    """
    values = {key: getattr(Config, key) for key in dir(Config) if key.isupper()}
    values.update(overrides or {})

    if values["APP_ENV"] == "production":
        if not values["SECRET_KEY"]:
            raise RuntimeError("SECRET_KEY must be set when APP_ENV=production.")
        if not values["TRUSTED_HOSTS"]:
            # Without it, anything built from the Host header (an external URL, a password
            # reset link one day) could name a host an attacker chose.
            raise RuntimeError("TRUSTED_HOSTS must be set when APP_ENV=production.")
        values.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
        values["HSTS_SECONDS"] = values["HSTS_SECONDS"] or 31536000
    elif not values["SECRET_KEY"]:
        values["SECRET_KEY"] = development_secret_key()

    if values["LOG_FORMAT"] not in (TEXT_LOGS, JSON_LOGS):
        raise RuntimeError(
            f"LOG_FORMAT must be {TEXT_LOGS!r} or {JSON_LOGS!r}, not {values['LOG_FORMAT']!r}."
        )
    values["SQLALCHEMY_DATABASE_URI"] = database_url(values["SQLALCHEMY_DATABASE_URI"])
    configure_cache(values)
    return values


def configure_cache(values: dict[str, Any]) -> None:
    """Derive Flask-Caching's and the throttles' settings from ours, keeping explicit ones."""
    if not values.get("CACHE_TYPE"):
        if values["REDIS_SENTINELS"]:
            values["CACHE_TYPE"] = "RedisSentinelCache"
        elif values["REDIS_CLUSTER"]:
            values["CACHE_TYPE"] = "RedisClusterCache"
        elif values["REDIS_URL"]:
            values["CACHE_TYPE"] = "RedisCache"
        else:
            values["CACHE_TYPE"] = "SimpleCache"
    cache_type = values["CACHE_TYPE"]
    if cache_type.startswith("Redis"):
        if values["REDIS_URL"]:
            values.setdefault("CACHE_REDIS_URL", values["REDIS_URL"])
        if values["REDIS_PASSWORD"]:
            values.setdefault("CACHE_REDIS_PASSWORD", values["REDIS_PASSWORD"])
        values.setdefault("CACHE_REDIS_SENTINELS", values["REDIS_SENTINELS"])
        values.setdefault("CACHE_REDIS_SENTINEL_MASTER", values["REDIS_SENTINEL_MASTER"])
        if values["REDIS_SENTINEL_PASSWORD"]:
            values.setdefault("CACHE_REDIS_SENTINEL_PASSWORD", values["REDIS_SENTINEL_PASSWORD"])
        if values["REDIS_CLUSTER"]:
            values.setdefault("CACHE_REDIS_CLUSTER", values["REDIS_CLUSTER"])
        values.setdefault(
            "CACHE_OPTIONS", redis_cache_options(values["CACHE_SOCKET_TIMEOUT"], cache_type)
        )
    values.setdefault("CACHE_DEFAULT_TIMEOUT", values["SETTINGS_CACHE_TTL"])
    if "RATELIMIT_STORAGE_URI" not in values:
        uri, options = ratelimit_storage(values)
        values["RATELIMIT_STORAGE_URI"] = uri
        values.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
