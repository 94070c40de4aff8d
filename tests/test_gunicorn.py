"""The production shape: nginx (``deploy/nginx.conf``) in front of gunicorn (``gunicorn.conf.py``).

Both run as real processes and are driven over real sockets.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import CSRF_INPUT, CSRF_META, PASSWORD, TEST_REDIS_URL
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
#: The account the write-limit test signs in as.
WRITER = "writer@example.com"


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One plain HTTP GET on loopback."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            get(port, "/healthz")
            return
        except OSError:
            assert process.poll() is None, f"{name} exited"
            assert time.monotonic() < deadline, f"{name} did not come up"
            time.sleep(0.1)


@pytest.fixture
def gunicorn(tmp_path: Path, key_prefix: str) -> Iterator[int]:
    """gunicorn serving the app from ``gunicorn.conf.py`` on SQLite and the test Redis."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "REDIS_URL": TEST_REDIS_URL,
        "CACHE_KEY_PREFIX": key_prefix,
        "RATELIMIT_KEY_PREFIX": key_prefix + "limits",
        # An hour-long window: not crossed while a test runs (windows end on the clock).
        "RATELIMIT_WRITES": "5 per hour",
        "SECRET_KEY": "test-secret",
        "TRUSTED_PROXIES": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_ACCESS_LOG": "",
        "FLASK_APP": "wsgi.py",
    }
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [*flask, "user", "create", WRITER, "--password", PASSWORD],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, process, "gunicorn")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def nginx(gunicorn: int, tmp_path: Path) -> Iterator[int]:
    """nginx with the repository's server block, in front of ``gunicorn``."""
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("127.0.0.1:8000", f"127.0.0.1:{gunicorn}")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"""
        daemon off;
        user root;
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {temp}/body;
            proxy_temp_path {temp}/proxy;
            fastcgi_temp_path {temp}/fastcgi;
            uwsgi_temp_path {temp}/uwsgi;
            scgi_temp_path {temp}/scgi;
            include {tmp_path}/site.conf;
        }}
        """
    )
    process = subprocess.Popen(
        [NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, process, "nginx")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


#: What a slow (or malicious) client sends before it stops: half the headers, or all of
#: them and none of the body they announce.
STALLED = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
]


def test_slow_clients_do_not_reach_the_workers(nginx: int) -> None:
    """Forty connections that stall mid-request, against two workers behind nginx."""
    with contextlib.ExitStack() as stack:
        for index in range(40):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", nginx)))
            sock.sendall(STALLED[index % 2])
        time.sleep(0.5)
        timings = []
        for _ in range(10):
            began = time.perf_counter()
            status, _ = get(nginx, "/healthz")
            assert status == 200
            timings.append(time.perf_counter() - began)
        print("healthz with 40 stalled clients: " + ", ".join(f"{t * 1000:.0f}" for t in timings))
        assert max(timings) < 2


def test_a_forged_forwarded_for_does_not_escape_the_sign_in_limit(nginx: int) -> None:
    """nginx overwrites X-Forwarded-For, so the app counts the client's real address."""
    session = requests.Session()
    base = f"http://127.0.0.1:{nginx}"
    statuses = []
    for attempt in range(6):
        page = session.get(base + "/login", timeout=5).text
        match = CSRF_INPUT.search(page)
        assert match, page
        response = session.post(
            base + "/login",
            data={
                "email": f"guess{attempt}@example.com",
                "password": "wrong password",
                "csrf_token": match.group(1),
            },
            headers={"X-Forwarded-For": f"198.51.100.{attempt}", "Origin": base},
            timeout=5,
        )
        statuses.append(response.status_code)
    assert statuses == [422] * 5 + [429]


def test_every_worker_draws_on_one_write_budget(nginx: int) -> None:
    """Two workers behind nginx, one budget in Redis: the sixth write is refused wherever
    it lands, says when to retry, and wrote nothing."""
    session = requests.Session()
    base = f"http://127.0.0.1:{nginx}"
    page = session.get(base + "/login", timeout=5).text
    match = CSRF_INPUT.search(page)
    assert match, page
    signed_in = session.post(
        base + "/login",
        data={"email": WRITER, "password": PASSWORD, "csrf_token": match.group(1)},
        headers={"Origin": base},
        timeout=5,
    )
    assert signed_in.status_code == 200, signed_in.text
    token = CSRF_META.search(session.get(base + "/settings", timeout=5).text)
    assert token
    headers = {"X-CSRFToken": token.group(1), "Origin": base}
    statuses = []
    for theme in ("dark", "light") * 4:
        response = session.patch(
            base + "/api/user/settings", json={"theme": theme}, headers=headers, timeout=5
        )
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429] * 3
    assert response.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    current = session.get(base + "/api/user/settings", timeout=5).json()
    assert current["theme"] == "dark"


def test_security_headers_arrive_once_through_nginx_and_gunicorn(nginx: int) -> None:
    # Appended by a WSGI middleware: what gunicorn sends and nginx passes on, over real HTTP.
    for path in ("/login", "/static/css/app.css", "/nowhere"):
        connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"):
                assert len(response.headers.get_all(name) or []) == 1, (path, name)
            assert response.headers["X-Request-ID"]
        finally:
            connection.close()
