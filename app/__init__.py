"""User settings: theme, language, time zone and notifications for a Flask app."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import INSTANCE_DIR, RESOURCES_DIR, build_config
from app.extensions import babel, cache, csrf, db, login_manager, migrate
from app.logs import RequestIdMiddleware, log_handler


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build a new app; ``config`` overrides what the environment says."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(RESOURCES_DIR / "templates"),
        static_folder=str(RESOURCES_DIR / "static"),
    )
    app.config.from_mapping(build_config(config))
    trust_proxies(app)
    configure_logging(app)
    # Outermost, so that every response carries the id, whatever answered it.
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app)
    register_extensions(app)
    register_blueprints(app)
    register_hooks(app)
    register_errorhandlers(app)
    register_commands(app)
    register_shellcontext(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Read the client's address, scheme and host from ``TRUSTED_PROXIES`` proxies in front.

    Rate limits per client, ``request.is_secure`` and external URLs then see the client,
    not the proxy; with none configured a forged ``X-Forwarded-For`` changes nothing.
    """
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def configure_logging(app: Flask) -> None:
    """Send the app's warnings to stderr under gunicorn and ``flask run`` alike.

    Each line names its request (``app.logs``); ``LOG_FORMAT=json`` makes it a JSON object.
    A process that set up logging already (a test runner, an embedding app) keeps its own.
    """
    root = logging.getLogger()
    if not app.debug and not root.handlers:
        root.addHandler(log_handler(app.config["LOG_FORMAT"]))
        root.setLevel(logging.INFO)


def register_extensions(app: Flask) -> None:
    """Bind every extension to ``app``."""
    from app import database, i18n
    from app.auth import throttle
    from app.http import bodies
    from app.http import csrf as csrf_tokens
    from app.preferences.cache import entries as settings_cache
    from app.preferences.session import load_user

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        # Writers queue behind SQLite's single write lock instead of failing at once.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(RESOURCES_DIR / "migrations"))
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    # First of all: limits bodies before CSRFProtect, or anything else, parses one.
    bodies.init_app(app)
    csrf.init_app(app)
    csrf_tokens.init_app(app)
    cache.init_app(app)
    settings_cache.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    throttle.init_app(app)


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """SQLite ignores foreign keys, and so ``ON DELETE CASCADE``, unless asked per connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")


def register_blueprints(app: Flask) -> None:
    """Mount every area of the app."""
    from app.admin.routes import bp as admin_bp
    from app.api.routes import bp as api_bp
    from app.auth.routes import bp as auth_bp
    from app.web.dashboard import bp as dashboard_bp
    from app.web.health import bp as health_bp
    from app.web.settings import bp as settings_bp
    from app.web.transfer import bp as transfer_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(transfer_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(admin_bp)

    @app.get("/")
    def index() -> ResponseReturnValue:
        """The home page is the settings page."""
        return redirect(url_for("settings.index"))


def register_hooks(app: Flask) -> None:
    """Require sign-in everywhere but the public endpoints, and add security headers."""
    from app import access, i18n, security

    app.before_request(access.require_login)
    security.init_app(app)
    # Around the whole app, as the request id is: no response escapes the headers.
    app.wsgi_app = security.SecurityHeaders(app.wsgi_app, app.config)
    app.context_processor(i18n.template_context)
    app.add_template_filter(i18n.local_time, "local_time")


def register_errorhandlers(app: Flask) -> None:
    """HTML error pages, and problem documents under ``/api``."""
    from app import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    """``flask user ...`` and ``flask preferences ...``."""
    from app import cli

    cli.init_app(app)


def register_shellcontext(app: Flask) -> None:
    """Objects available in ``flask shell``."""
    from app.models import User

    def shell_context() -> dict[str, Any]:
        return {"db": db, "User": User}

    app.shell_context_processor(shell_context)
