"""Shared pieces of the benchmark and the fault drills: services, database, servers, sign-in."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "benchmark password"
LOG_DIR = ROOT / "bench" / "results"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def ensure_services() -> None:
    """Start PostgreSQL and Redis if they are installed but stopped."""
    subprocess.run(["bash", str(ROOT / "scripts" / "services.sh")], check=True)


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    log("installing wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") or "/usr/bin/wrk"


def psql(url: str, sql: str) -> str:
    """Run SQL through psql and return its unaligned output."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def database_url(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """The URL of database ``name`` on the admin URL's server."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


def flask_env(database: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    """Environment for the app's processes."""
    env = {
        **os.environ,
        "FLASK_APP": "wsgi.py",
        "APP_ENV": "production",
        "SECRET_KEY": "benchmark-secret-key-benchmark-secret-key",
        "DATABASE_URL": database,
        "RATELIMIT_LOGIN": "100000 per minute",
        # A benchmark client writes far faster than a person: production's two windows, with
        # room for the load, so the limit costs what it costs in production and refuses nothing.
        "RATELIMIT_WRITES": "10000000 per 10 seconds; 100000000 per hour",
        "TRUSTED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def prepare_database(name: str, users: int, admin_url: str = PG_ADMIN_URL) -> str:
    """Create (or reuse) database ``name`` holding exactly ``users`` bench users; return its URL."""
    url = database_url(name, admin_url)
    exists = psql(admin_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if not exists:
        log(f"creating database {name}")
        psql(admin_url, f"CREATE DATABASE {name}")
    subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        check=True,
        cwd=ROOT,
        env=flask_env(url, None),
        capture_output=True,
    )
    count = int(psql(url, "SELECT count(*) FROM users"))
    if count != users:
        log(f"loading {users:,} users into {name} (bulk SQL)")
        password_hash = subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                f"from argon2 import PasswordHasher; print(PasswordHasher().hash({PASSWORD!r}))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        psql(url, "TRUNCATE users RESTART IDENTITY CASCADE")
        # One statement: the server generates the rows, so a million users take seconds.
        psql(
            url,
            "INSERT INTO users (email, password_hash, preferences) "
            f"SELECT 'bench' || g || '@example.com', '{password_hash}', "
            """CASE WHEN g % 3 = 0 THEN '{"_v": 1, "theme": "dark"}'::jsonb ELSE '{}'::jsonb END """
            f"FROM generate_series(1, {users}) AS g",
        )
        psql(url, "VACUUM ANALYZE users")
    return url


@dataclass
class Server:
    """A gunicorn process serving one app."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _workers(self) -> list[tuple[list[str], Path]]:
        """The ``stat`` fields and ``/proc`` directory of each worker (the master's children)."""
        workers = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended while we looked
            if int(fields[1]) == self.process.pid:
                workers.append((fields, stat.parent))
        return workers

    def worker_rss_mib(self) -> list[float]:
        """Resident memory of each worker process, in MiB."""
        sizes = []
        for _, directory in self._workers():
            try:
                status = (directory / "status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sorted(sizes)

    def cpu_seconds(self) -> float:
        """CPU time, user and system, that the workers have used so far.

        Unlike requests per second, it does not move with what else the machine is doing
        (wrk, the databases, the other servers), so per request it compares servers steadily.
        """
        ticks = sum(int(fields[11]) + int(fields[12]) for fields, _ in self._workers())
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop gunicorn and its workers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def gunicorn(
    name: str,
    target: str,
    env: dict[str, str],
    workers: int | None = None,
    timeout: int = 30,
    *,
    worker_class: str | None = None,
    threads: int | None = None,
) -> Iterator[Server]:
    """Serve ``target`` (``wsgi:app``) on a free port, as ``gunicorn.conf.py`` serves production.

    Workers, worker class and threads are the production defaults unless given. The servers'
    logs (access log included) go to ``bench/results/<name>.log`` rather than the report.
    """
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = (LOG_DIR / f"{name}.log").open("wb")
    overrides = {"--workers": workers, "--worker-class": worker_class, "--threads": threads}
    command = [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py")]
    for flag, value in overrides.items():
        if value is not None:
            command += [flag, str(value)]
    command += [
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        str(timeout),
        "--log-level",
        "warning",
        target,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = Server(name, port, process)
    try:
        wait_for_port(port)
        yield server
    finally:
        server.stop()
        log_file.close()


@dataclass(frozen=True)
class Session:
    """A signed-in client: its cookie, CSRF token and current ETag."""

    email: str
    cookie: str
    csrf: str
    etag: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)
#: Sent by the set-up requests and by wrk alike. Flask-Login's session protection ties a
#: session to the client's address and User-Agent: a session signed in by one agent and used
#: by another is marked not fresh and sent back re-signed on every request, which a browser,
#: keeping its agent, never makes a server do.
USER_AGENT = "settings-bench"
#: Set-up requests (sign-ins hash a password with Argon2) on a machine busy with other work.
SETUP_TIMEOUT = 60


def _request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], str, list[str]]:
    headers = {"User-Agent": USER_AGENT, **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _opener.open(request, timeout=SETUP_TIMEOUT) as response:
            body = response.read().decode()
            return (
                response.status,
                dict(response.headers),
                body,
                response.headers.get_all("Set-Cookie") or [],
            )
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        return error.code, dict(error.headers), body, error.headers.get_all("Set-Cookie") or []


def get(url: str, cookie: str) -> tuple[dict[str, str], str]:
    """Headers and body of a GET sent as a signed-in session's browser would send it."""
    _, headers, body, _ = _request(url, headers={"Cookie": cookie})
    return headers, body


def _cookie_header(set_cookies: list[str], jar: dict[str, str]) -> str:
    for header in set_cookies:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for key, morsel in parsed.items():
            jar[key] = morsel.value
    return "; ".join(f"{key}={value}" for key, value in jar.items())


def sign_in(base_url: str, email: str, password: str = PASSWORD, floor: bool = False) -> Session:
    """Sign in through the real login form, as a browser would.

    :param floor: the floor app's form has no page and no CSRF token; just post to it.
    """
    jar: dict[str, str] = {}
    body, cookies = "", []
    if not floor:
        _, _, body, cookies = _request(f"{base_url}/login")
    cookie = _cookie_header(cookies, jar)
    token_match = CSRF_INPUT.search(body) or CSRF_META.search(body)
    token = token_match.group(1) if token_match else ""
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token})
    status, _, _, cookies = _request(
        f"{base_url}/login",
        data=form.encode(),
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 303:
        raise RuntimeError(f"sign-in of {email} answered {status}")
    cookie = _cookie_header(cookies, jar)
    csrf = ""
    if not floor:
        _, _, body, cookies = _request(f"{base_url}/settings", headers={"Cookie": cookie})
        cookie = _cookie_header(cookies, jar)
        match = CSRF_META.search(body)
        csrf = match.group(1) if match else ""
    status, headers, _, _ = _request(f"{base_url}/api/user/settings", headers={"Cookie": cookie})
    return Session(email=email, cookie=cookie, csrf=csrf, etag=headers.get("ETag", ""))
