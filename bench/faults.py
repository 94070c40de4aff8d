"""``make bench-faults``: mixed load while Redis dies, Redis hangs and PostgreSQL restarts.

Everything runs on private servers this script starts (a PostgreSQL cluster and a Redis on
free ports), so the drill never disturbs the machine's own services. It reports responses by
status and p99 latency per phase, and afterwards checks every acknowledged write against the
database: none may be lost, and no read may return a value older than the database's.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Session,
    flask_env,
    free_port,
    gunicorn,
    log,
    prepare_database,
    psql,
    sign_in,
    wait_for_port,
)

THEMES = ("light", "dark", "system")
DIGESTS = ("off", "daily", "weekly")


def _pg_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return candidates[-1].parent


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; on a root CI machine run it as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, restartable on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="drill-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.bin = _pg_bin()
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "initdb"),
                    "--no-sync",
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-D",
                    str(self.dir / "data"),
                ]
            ),
            check=True,
            capture_output=True,
        )

    @property
    def admin_url(self) -> str:
        """URL of the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.dir / "data"),
                    "-o",
                    options,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    *args,
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._ctl("start")
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop at once, ending every session (what a crash or failover looks like)."""
        self._ctl("stop", "-m", "fast")

    def destroy(self) -> None:
        """Stop and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A Redis on a free port that the drill may kill, restart and pause."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="drill-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.sleeper: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start with no persistence, as the machine's own Redis runs."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: connections refused until restarted."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def hang(self, seconds: float) -> None:
        """Block the server for ``seconds``: connections open, nothing answered."""
        self.sleeper = subprocess.Popen(
            ["redis-cli", "-p", str(self.port), "DEBUG", "SLEEP", str(seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def destroy(self) -> None:
        """Kill and clean up."""
        self.kill()
        if self.sleeper:
            self.sleeper.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Outcome:
    """What one request did."""

    phase: str
    kind: str
    status: int
    seconds: float
    email: str = ""
    started: float = 0.0


@dataclass
class Ledger:
    """Every request's outcome, and each user's acknowledged and attempted writes."""

    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[str, dict[str, str]] = field(default_factory=dict)
    attempted_after_ack: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "baseline"
    acknowledged_count: int = 0
    #: When each phase's fault struck (``time.monotonic()``).
    fault_at: dict[str, float] = field(default_factory=dict)
    #: When each phase's fault had fully happened (a server's shutdown takes a while).
    fault_done_at: dict[str, float] = field(default_factory=dict)


def _call(
    port: int, method: str, path: str, headers: dict[str, str], body: str | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def client_loop(port: int, session: Session, ledger: Ledger, stop: threading.Event) -> None:
    """One client: 70 % reads (API and page), 30 % writes of fresh values, until ``stop``."""
    rng = random.Random(session.email)
    headers = {"Cookie": session.cookie}
    while not stop.is_set():
        roll = rng.random()
        started = time.monotonic()
        if roll < 0.55:
            kind, (status, _) = "api_get", _call(port, "GET", "/api/user/settings", headers)
        elif roll < 0.7:
            kind, (status, _) = "page_get", _call(port, "GET", "/settings", headers)
        else:
            kind = "patch"
            change = {"theme": rng.choice(THEMES), "digest": rng.choice(DIGESTS)}
            body = json.dumps(
                {"theme": change["theme"], "notifications": {"digest": change["digest"]}}
            )
            status, _ = _call(
                port,
                "PATCH",
                "/api/user/settings",
                {**headers, "X-CSRFToken": session.csrf, "Content-Type": "application/json"},
                body,
            )
            with ledger.lock:
                if status == 200:
                    ledger.acknowledged_count += 1
                    ledger.acknowledged[session.email] = change
                    ledger.attempted_after_ack[session.email] = []
                else:
                    # Outcome unknown to the client: the database may or may not have it.
                    ledger.attempted_after_ack[session.email].append(change)
        with ledger.lock:
            ledger.outcomes.append(
                Outcome(
                    ledger.phase, kind, status, time.monotonic() - started, session.email, started
                )
            )
        time.sleep(0.005)


def verify(database_url: str, ledger: Ledger) -> list[str]:
    """Every acknowledged write must be in the database (or superseded by a later attempt)."""
    rows = psql(
        database_url,
        "SELECT email, coalesce(preferences->>'theme', 'system'), "
        "coalesce(preferences->>'notifications.digest', 'weekly') FROM users "
        "WHERE email LIKE 'bench%'",
    )
    stored = {}
    for line in rows.splitlines():
        email, theme, digest = line.split("|")
        stored[email] = {"theme": theme, "digest": digest}
    lost = []
    for email, change in ledger.acknowledged.items():
        allowed = [change, *ledger.attempted_after_ack.get(email, [])]
        if stored.get(email) not in allowed:
            lost.append(f"{email}: acknowledged {change}, database has {stored.get(email)}")
    return lost


def verify_reads(port: int, database_url: str, sessions: list[Session]) -> list[str]:
    """After recovery, the API must answer what the database holds: no stale cache entry."""
    stale = []
    for session in sessions:
        status, body = _call(port, "GET", "/api/user/settings", {"Cookie": session.cookie})
        if status != 200:
            stale.append(f"{session.email}: GET answered {status}")
            continue
        theme = psql(
            database_url,
            "SELECT coalesce(preferences->>'theme', 'system') FROM users "
            f"WHERE email = '{session.email}'",
        )
        if json.loads(body)["theme"] != theme:
            stale.append(f"{session.email}: API says {json.loads(body)['theme']}, DB {theme}")
    return stale


def unserved_while_database_down(ledger: Ledger) -> list[str]:
    """Users whose warm reads failed while PostgreSQL was down, though nothing explains it.

    The cache serves every user's reads through the outage, with one exception: a user whose
    write was under way when the database stopped. That write may have committed before the
    connection died, so the cache must not serve the value from before it, and that user's
    reads wait for the database.
    """
    stopping_at = ledger.fault_at.get("postgres down")
    if stopping_at is None:
        return []
    # The server ends its sessions while it shuts down: a write sent before it had stopped
    # may have reached it, and may have committed, however quickly its answer came.
    stopped_at = ledger.fault_done_at.get("postgres down", stopping_at)
    cut_short = {
        o.email
        for o in ledger.outcomes
        if o.kind == "patch" and o.started <= stopped_at and o.started + o.seconds >= stopping_at
    }
    failed: Counter[str] = Counter(
        o.email
        for o in ledger.outcomes
        if o.phase == "postgres down" and o.kind != "patch" and o.status != 200
    )
    return [
        f"{email}: {count} reads failed while the database was down"
        for email, count in sorted(failed.items())
        if email not in cut_short
    ]


def server_errors(ledger: Ledger) -> list[str]:
    """5xx answers nothing excuses: only a 503 for a request alive during the database outage.

    The outage runs from the stop until the restarted server accepts connections; a request
    sent while it was starting may be answered just after, and its 503 is still the outage's.
    """
    down_at = ledger.fault_at.get("postgres down", float("inf"))
    up_at = ledger.fault_at.get("postgres restarted", float("inf"))
    found: Counter[tuple[str, str, int]] = Counter(
        (o.phase, o.kind, o.status)
        for o in ledger.outcomes
        if o.status >= 500
        and not (o.status == 503 and o.started <= up_at and o.started + o.seconds >= down_at)
    )
    return [
        f"{phase}: {count} {kind} requests answered {status}"
        for (phase, kind, status), count in found.items()
    ]


def summarise(ledger: Ledger) -> dict[str, dict[str, object]]:
    """Responses by status and latency per phase."""
    phases: dict[str, dict[str, object]] = {}
    for phase in dict.fromkeys(outcome.phase for outcome in ledger.outcomes):
        chosen = [o for o in ledger.outcomes if o.phase == phase]
        latencies = sorted(o.seconds for o in chosen)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        by_kind: dict[str, Counter[int]] = defaultdict(Counter)
        for outcome in chosen:
            by_kind[outcome.kind][outcome.status] += 1
        phases[phase] = {
            "requests": len(chosen),
            "p99_ms": round(p99 * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 1),
            "statuses": {kind: dict(counts) for kind, counts in by_kind.items()},
        }
    return phases


@dataclass
class Report:
    """The drill's findings."""

    phases: dict[str, dict[str, object]]
    acknowledged_writes: int
    lost_writes: list[str]
    stale_reads: list[str]
    #: Users whose warm reads failed while the database was down, without a cause.
    unserved_reads: list[str] = field(default_factory=list)
    #: 5xx answers outside the database outage.
    server_errors: list[str] = field(default_factory=list)


@contextmanager
def private_services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A private PostgreSQL and Redis, destroyed afterwards whatever happens."""
    postgres, redis_server = PrivatePostgres(), PrivateRedis()
    try:
        postgres.start()
        redis_server.start()
        yield postgres, redis_server
    finally:
        redis_server.destroy()
        postgres.destroy()


def drill(
    phase_seconds: float,
    clients: int,
    users: int,
    worker_class: str | None = None,
    threads: int | None = None,
) -> Report:
    """Run every fault in turn under load; return the report."""
    with private_services() as (postgres, redis_server):
        database = prepare_database("drill", users, postgres.admin_url)
        env = flask_env(database + "?connect_timeout=2", redis_server.url, CACHE_RETRY_AFTER="1")
        serving = {"worker_class": worker_class, "threads": threads}
        with gunicorn("app", "wsgi:app", env, workers=2, timeout=20, **serving) as app:
            emails = [f"bench{i + 1}@example.com" for i in range(clients)]
            sessions = [sign_in(app.url, email) for email in emails]
            ledger = Ledger()
            stop = threading.Event()
            threads = [
                threading.Thread(target=client_loop, args=(app.port, s, ledger, stop))
                for s in sessions
            ]
            for thread in threads:
                thread.start()

            def phase(name: str, seconds: float, fault: Callable[[], None] | None = None) -> None:
                log(f"phase: {name}")
                # Label first, so requests hit by the fault are counted in its phase.
                with ledger.lock:
                    ledger.phase = name
                    ledger.fault_at[name] = time.monotonic()
                if fault:
                    fault()
                with ledger.lock:
                    ledger.fault_done_at[name] = time.monotonic()
                time.sleep(seconds)

            try:
                phase("baseline", phase_seconds)
                phase("redis killed", phase_seconds * 2, redis_server.kill)
                phase("redis restarted", phase_seconds, redis_server.start)
                hang = phase_seconds * 2
                phase("redis hanging", hang, lambda: redis_server.hang(hang))
                phase("redis recovered", phase_seconds)
                phase("postgres down", phase_seconds * 2, postgres.stop)
                # Requests while it starts up are part of the outage; after that none may fail.
                phase("postgres starting", 0, postgres.start)
                phase("postgres restarted", phase_seconds * 2)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
            # Let every worker's breaker close and reconcile before reading back.
            time.sleep(1.5)
            report = Report(
                phases=summarise(ledger),
                acknowledged_writes=ledger.acknowledged_count,
                lost_writes=verify(database, ledger),
                stale_reads=verify_reads(app.port, database, sessions),
                unserved_reads=unserved_while_database_down(ledger),
                server_errors=server_errors(ledger),
            )
    return report


def problems_in(report: Report) -> list[str]:
    """What makes the drill fail: 5xx where none is allowed, hangs, lost or stale data."""
    found: list[str] = []
    for name, data in report.phases.items():
        statuses: dict[str, dict[int, int]] = data["statuses"]  # built by summarise
        for kind, counts in statuses.items():
            for status, count in counts.items():
                if status == 0:
                    found.append(f"{name}: {count} {kind} requests got no answer")
        if float(str(data["max_ms"])) > 5000:
            found.append(f"{name}: a request took {data['max_ms']} ms")
    found.extend(report.server_errors)
    found.extend(f"lost: {item}" for item in report.lost_writes)
    found.extend(f"stale: {item}" for item in report.stale_reads)
    found.extend(f"unserved: {item}" for item in report.unserved_reads)
    return found


def render(report: Report) -> str:
    """The drill's table."""
    lines = [
        "| phase | requests | median ms | p99 ms | max ms | responses by status |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, data in report.phases.items():
        kinds: dict[str, dict[int, int]] = data["statuses"]  # built by summarise
        statuses = "; ".join(
            f"{kind} " + ", ".join(f"{code}: {n}" for code, n in sorted(counts.items()))
            for kind, counts in kinds.items()
        )
        lines.append(
            f"| {name} | {data['requests']} | {data['median_ms']} | {data['p99_ms']} | "
            f"{data['max_ms']} | {statuses} |"
        )
    lines.append("")
    lines.append(
        f"acknowledged writes: {report.acknowledged_writes} (each user's last one checked "
        "against the database); lost: "
        f"{len(report.lost_writes)}; stale reads after recovery: {len(report.stale_reads)}"
    )
    return "\n".join(lines)


def main() -> int:
    """Run the drill and print its report; exit 1 if anything went wrong."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase-seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--worker-class", default=None, help="gunicorn.conf.py's unless given")
    parser.add_argument("--worker-threads", type=int, default=None)
    args = parser.parse_args()
    report = drill(
        args.phase_seconds, args.clients, args.users, args.worker_class, args.worker_threads
    )
    print(render(report))
    found = problems_in(report)
    if found:
        print("\nFAILED:\n  " + "\n  ".join(found))
        return 1
    print(
        "\nPASSED: no 5xx outside the database outage, warm reads served through it, no hang, "
        "nothing lost, nothing stale"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
