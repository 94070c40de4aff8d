"""Browser fixtures: the app served on a free local port, driven by Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from app.auth import service as auth_service
from app.extensions import db
from app.models import User
from app.preferences import service as preferences
from tests.conftest import PASSWORD, fresh_tables, make_config, run_database_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"

pytestmark = pytest.mark.browser

# Chromium's own network chatter is refused on this machine's closed network; keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def closed_when_sent(app: Flask) -> WSGIApplication:
    """``app``, each response closed as soon as its last chunk is handed over.

    Werkzeug's development server closes a response only after draining the request's
    socket, and skips the close when that read fails: a browser that resets a connection it
    no longer needs (a favicon, when a test navigates on) then left a static file open, and
    the test failed on the ResourceWarning.
    """

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        response = app(environ, start_response)
        try:
            yield from response
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()

    return serve


class LiveServer:
    """The app served by Werkzeug in a thread; stoppable to simulate an outage."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, closed_when_sent(app), threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering, as a crashed server would."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def live_app(tmp_path: Path, key_prefix: str) -> Iterator[Flask]:
    """An app on PostgreSQL and Redis with empty tables, for serving to the browser."""
    with fresh_tables(create_app(make_config(run_database_url(), key_prefix))) as app:
        yield app


@pytest.fixture
def live_server(live_app: Flask) -> Iterator[LiveServer]:
    """``live_app`` answering on a free port of 127.0.0.1."""
    server = LiveServer(live_app)
    yield server
    server.stop()


@pytest.fixture
def browser_user(live_app: Flask) -> str:
    """Create ``person@example.com`` and return the email."""
    with live_app.app_context():
        auth_service.create_user("person@example.com", PASSWORD)
    return "person@example.com"


def save_settings(app: Flask, email: str, *changes: dict[str, Any], source: str = "other") -> None:
    """Save each of ``changes`` in turn for the user ``email``, as another device would."""
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        for change in changes:
            preferences.update_settings(user_id, change, source=source)


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (separate "devices"); all closed at teardown."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form and wait for the settings page."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/settings")


@pytest.fixture
def signed_in_page(
    live_server: LiveServer, browser_user: str, new_context: Callable[..., BrowserContext]
) -> Page:
    """A page of a fresh context, signed in as ``browser_user``, on ``/settings``."""
    page = new_context().new_page()
    sign_in(page, live_server.url, browser_user)
    return page


def run_axe(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page and return its violations (an empty list when clean).

    axe is evaluated from a vendored copy through the DevTools protocol, which the page's
    CSP does not govern, so the page under test keeps its real policy.
    """
    page.evaluate(AXE_JS.read_text())
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return list(result["violations"])


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under ``test-output/`` and return its path."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
