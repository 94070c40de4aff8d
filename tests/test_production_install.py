"""The production build, installed and served the way the README's Deploy section says.

``scripts/build-production.sh`` builds a fresh environment from the lock (no ``-e``), once for
the module. Everything then runs from that environment alone, with the working directory
outside the checkout and a PATH without the development environment: migrations, templates,
static files and catalogues are found in the installed package or not at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import CSRF_META, PASSWORD, TEST_REDIS_URL, create_database, drop_database
from tests.support import free_port
from tests.test_gunicorn import wait_for
from tests.test_packaging import dockerfile_instructions

pytestmark = pytest.mark.production

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "scripts" / "build-production.sh"
EMAIL = "operator@example.com"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What production runs, built by the script the Dockerfile runs."""
    target = tmp_path_factory.mktemp("production")
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(target)],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@dataclass
class Deployment:
    """gunicorn serving the built environment, and where its access log goes."""

    port: int
    env: dict[str, str]
    workdir: Path
    access_log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run(build: Path, workdir: Path, env: dict[str, str], *command: str) -> str:
    """Run one of the built environment's programs, as an operator would; its output."""
    result = subprocess.run(
        [str(build / "venv" / "bin" / command[0]), *command[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def deployment(
    build: Path, tmp_path_factory: pytest.TempPathFactory, redis_client: redis.Redis
) -> Iterator[Deployment]:
    """A fresh PostgreSQL database migrated, a user created, gunicorn started, all by the build."""
    workdir = tmp_path_factory.mktemp("operator")
    database = create_database("test_production")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    port = free_port()
    env = {
        "PATH": f"{build / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "FLASK_APP": "app",
        "APP_ENV": "production",
        "SECRET_KEY": "production-test-secret",
        "DATABASE_URL": database,
        "REDIS_URL": TEST_REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        "RATELIMIT_KEY_PREFIX": prefix + "limits",
        "TRUSTED_HOSTS": "127.0.0.1",
        # The test stands where nginx would: on loopback, saying the client came over TLS.
        "TRUSTED_PROXIES": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
    }
    access_log = workdir / "gunicorn.log"
    try:
        run(build, workdir, env, "flask", "db", "upgrade")
        run(build, workdir, env, "flask", "user", "create", EMAIL, "--password", PASSWORD)
        with access_log.open("wb") as log:
            process = subprocess.Popen(
                [str(build / "venv" / "bin" / "gunicorn"), "-c", str(build / "gunicorn.conf.py")],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(port, process, "gunicorn")
            yield Deployment(port, env, workdir, access_log)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        drop_database(database)
        keys = list(redis_client.scan_iter(match=prefix + "*", count=500))
        if keys:
            redis_client.delete(*keys)


@dataclass
class Browser:
    """A browser behind the TLS proxy, on plain HTTP to gunicorn.

    Production cookies are Secure, so it keeps them itself; and over HTTPS Flask-WTF wants
    a same-origin Referer on every form, as a browser sends.
    """

    base: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, str] | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        response = requests.request(
            method,
            self.base + path,
            data=data,
            headers={
                "X-Forwarded-Proto": "https",
                "Referer": self.base.replace("http:", "https:", 1) + path,
                **(headers or {}),
            },
            cookies=self.cookies,
            allow_redirects=False,
            timeout=10,
        )
        self.cookies.update(response.cookies.get_dict())
        return response


def test_the_installed_package_runs_not_the_checkout(build: Path, deployment: Deployment) -> None:
    code = "import app.config as c; print(c.INSTALLED, c.RESOURCES_DIR)"
    installed, resources = run(
        build, deployment.workdir, deployment.env, "python", "-c", code
    ).split()
    assert installed == "True"
    assert Path(resources).is_relative_to(build / "venv")
    assert (Path(resources) / "translations" / "de" / "LC_MESSAGES" / "messages.mo").is_file()


def test_healthz_answers_with_both_services_up(deployment: Deployment) -> None:
    response = Browser(deployment.base).request("GET", "/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok", body
    assert body["cache"]["status"] == "ok", body


def test_a_signed_in_user_sees_settings_in_german_with_its_css(deployment: Deployment) -> None:
    browser = Browser(deployment.base)
    login = browser.request("GET", "/login")
    assert login.status_code == 200
    token = CSRF_META.search(login.text)
    assert token, login.text
    signed_in = browser.request(
        "POST", "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token[1]}
    )
    assert signed_in.status_code == 303, signed_in.text
    page = browser.request("GET", "/settings")
    assert page.status_code == 200
    token = CSRF_META.search(page.text)
    assert token
    changed = browser.request(
        "PATCH",
        "/api/user/settings",
        data=json.dumps({"locale": "de"}),
        headers={"Content-Type": "application/merge-patch+json", "X-CSRFToken": token[1]},
    )
    assert changed.status_code == 200, changed.text

    page = browser.request("GET", "/settings")
    assert page.status_code == 200
    assert '<html lang="de"' in page.text
    assert "Einstellungen" in page.text
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert stylesheet
    css = browser.request("GET", stylesheet[1])
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.content == (ROOT / "static" / "css" / "app.css").read_bytes()


def test_the_access_log_names_each_request_and_its_id(deployment: Deployment) -> None:
    response = Browser(deployment.base).request("GET", "/login?from=access-log")
    # Until every response carries one, gunicorn logs "-" in its place.
    request_id = response.headers.get("X-Request-ID", "-")
    deadline = time.monotonic() + 5
    while True:
        lines = [
            line
            for line in deployment.access_log.read_text().splitlines()
            if '"GET /login?from=access-log HTTP/1.1" 200 ' in line
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert lines, deployment.access_log.read_text()
    assert lines[-1].endswith(f"request_id={request_id}")


def test_the_container_healthcheck_passes_against_the_build(
    build: Path, deployment: Deployment
) -> None:
    """The Dockerfile's HEALTHCHECK command, run as Docker would, against this deployment."""
    (healthcheck,) = [
        rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"
    ]
    program, *arguments = json.loads(healthcheck[healthcheck.index("CMD [") + 4 :])
    assert program == "python"
    run(build, deployment.workdir, deployment.env, program, *arguments)
