"""``make bench``: throughput and latency of each scenario against two references.

Serves the app, the floor (bench/floor.py: constant answers), the bound (bench/bound.py: the
floor plus only the round trips the app's guarantees cost) and the plain peer (bench/naive.py:
no cache, no history) with the same gunicorn set-up, signs in a few dozen users through each
one's login form, drives load from a separate process with wrk, and interleaves the runs
(floor, bound, peer, app, floor, ...) so machine drift favours none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import bound, naive
from bench.common import (
    ROOT,
    USER_AGENT,
    Session,
    ensure_services,
    ensure_wrk,
    flask_env,
    get,
    gunicorn,
    log,
    prepare_database,
    sign_in,
)

SCENARIOS = {
    "warm_get": ("GET /api/user/settings, warm cache", {200}),
    "cold_get": ("GET /api/user/settings, cache disabled", {200}),
    "conditional_get": ("GET with If-None-Match (304)", {304}),
    "patch": ("PATCH /api/user/settings", {200}),
    "settings_page": ("GET /settings", {200}),
    "htmx_save": ("htmx save of one field", {200}),
}
ROLES = ("floor", "bound", "peer", "app")
#: The least each scenario must reach, as the app's ratio to the floor and to the plain peer.
TARGETS: dict[str, tuple[float, float | None]] = {
    "warm_get": (0.85, None),
    "conditional_get": (0.9, None),
    "patch": (0.40, 1.5),
    "settings_page": (0.50, 1.2),
    "htmx_save": (0.35, None),
}
#: The cold read (no cache) against the warm one, and Redis bytes per cached user.
COLD_TARGET = 0.6
#: The warm read run after the cold one in each of its rounds, which the cold one is judged by.
PAIRED_WARM = "app_warm"
MEMORY_TARGET = 200
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
HTMX_FIELD = "notifications__digest"
HTMX_PATH = "/settings/notifications__digest"
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass
class Run:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    #: The server's CPU time (its workers', user and system) per request served.
    cpu_us: float = 0.0


@dataclass
class Figure:
    """Every run of one scenario on one server."""

    runs: list[Run] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Median requests per second."""
        return statistics.median(run.rps for run in self.runs)

    @property
    def cpu_us(self) -> float:
        """Median CPU time per request, in microseconds."""
        return statistics.median(run.cpu_us for run in self.runs)

    @property
    def p50_ms(self) -> float:
        """Median of the runs' medians."""
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        """Worst p99 of the runs."""
        return max(run.p99_ms for run in self.runs)


def write_sessions(sessions: list[Session], directory: Path, name: str) -> Path:
    """The sessions file the wrk script reads."""
    path = directory / f"{name}.tsv"
    path.write_text("".join(f"{s.cookie}\t{s.csrf}\t{s.etag}\n" for s in sessions))
    return path


def run_wrk(
    wrk: str, base_url: str, scenario: str, sessions: Path, args: argparse.Namespace, seconds: float
) -> Run:
    """Drive one scenario for ``seconds`` and parse wrk's report."""
    command = [
        wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={ROOT / 'bench' / 'scenarios.lua'}",
        base_url,
        "--",
        scenario,
        str(sessions),
        HTMX_PATH,
        HTMX_FIELD,
        str(args.threads),
        USER_AGENT,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    statuses: dict[str, int] = {}
    result: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("STATUSES"):
            for pair in line.split()[1:]:
                code, count = pair.split("=")
                statuses[code] = int(count)
        elif line.startswith("RESULT"):
            for pair in line.split()[1:]:
                key, value = pair.split("=")
                result[key] = float(value)
    errors = int(result.get("socket_errors", 0))
    if errors:
        statuses["socket-error"] = errors
    return Run(
        rps=result["rps"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        requests=int(result["requests"]),
        statuses=statuses,
    )


def refresh_etags(base_url: str, sessions: list[Session]) -> list[Session]:
    """Current ETags, so the conditional GET really answers 304."""
    fresh = []
    for session in sessions:
        headers, _ = get(f"{base_url}/api/user/settings", session.cookie)
        fresh.append(Session(session.email, session.cookie, session.csrf, headers.get("ETag", "")))
    return fresh


def settings_page_bytes(base_url: str, session: Session) -> int:
    """The length of the app's settings page, which the bound sends as a constant."""
    _, body = get(f"{base_url}/settings", session.cookie)
    return len(body.encode())


def sql_per_request(database_url: str) -> dict[str, float]:
    """SQL statements per request of each scenario, counted in-process with SQLAlchemy events."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.sqlcount", database_url, REDIS_URL],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return {key: float(value) for key, value in json.loads(output).items()}


def redis_memory_per_user(sessions: list[Session]) -> int:
    """Bytes Redis uses for one cached user (``MEMORY USAGE`` of the key)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    sizes = [
        client.memory_usage(key) or 0 for key in client.scan_iter(match="user_settings:[0-9]*")
    ]
    client.close()
    return int(statistics.median(sizes)) if sizes else 0


def main() -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=40, help="signed-in users driving load")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    # Unless given, each server runs as gunicorn.conf.py runs production.
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class")
    parser.add_argument("--worker-threads", type=int, default=None, help="gunicorn --threads")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--chart", type=Path, default=None, help="write the PNG chart here")
    args = parser.parse_args()
    scenarios = [name for name in args.scenarios.split(",") if name]

    ensure_services()
    wrk = ensure_wrk()
    database = prepare_database(f"bench_{args.users}", args.users)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = flask_env(database, REDIS_URL)
    cold_env = flask_env(database, REDIS_URL, CACHE_TYPE="NullCache")
    floor_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    naive.prepare(database)
    bound.prepare(database)
    peer_env = {**floor_env, "DATABASE_URL": database}

    serving = {"worker_class": args.worker_class, "threads": args.worker_threads}
    results: dict[str, dict[str, Figure]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        gunicorn("app", "wsgi:app", env, args.workers, **serving) as app,
        gunicorn("cold", "wsgi:app", cold_env, args.workers, **serving) as cold,
        gunicorn("floor", "bench.floor:app", floor_env, args.workers, **serving) as floor,
        gunicorn("peer", "bench.naive:app", peer_env, args.workers, **serving) as peer,
        contextlib.ExitStack() as later,
    ):
        directory = Path(tmp)
        step = max(1, args.users // args.sessions)
        emails = [f"bench{1 + i * step}@example.com" for i in range(args.sessions)]
        log(f"signing in {len(emails)} users through the login form")
        app_sessions = [sign_in(app.url, email) for email in emails]
        # The bound sends a page as long as the app's, which it learns from the app.
        page_bytes = settings_page_bytes(app.url, app_sessions[0])
        bound_env = {
            **peer_env,
            "REDIS_URL": REDIS_URL,
            "BOUND_PAGE_BYTES": str(page_bytes),
        }
        bounding = later.enter_context(
            gunicorn("bound", "bench.bound:app", bound_env, args.workers, **serving)
        )
        bound_sessions = [sign_in(bounding.url, email, floor=True) for email in emails]
        cold_sessions = [sign_in(cold.url, email) for email in emails]
        floor_sessions = [sign_in(floor.url, email, floor=True) for email in emails]
        peer_sessions = [sign_in(peer.url, email, floor=True) for email in emails]
        servers = {
            "floor": (floor, floor_sessions),
            "bound": (bounding, bound_sessions),
            "peer": (peer, peer_sessions),
            "app": (app, app_sessions),
        }
        for name in scenarios:
            label = SCENARIOS[name][0]
            log(f"scenario {name}: {label}")
            # Each role's server, its sessions and the wrk scenario it is driven with.
            lineup = {role: (*servers[role], name) for role in ROLES}
            if name == "cold_get":
                lineup["app"] = (cold, cold_sessions, name)
                # Judged against the warm read taken right after it in the same round, so
                # that the machine's drift between scenarios does not enter the ratio.
                lineup[PAIRED_WARM] = (app, app_sessions, "warm_get")
            results[name] = {role: Figure() for role in lineup}
            for round_ in range(args.rounds):
                for role, (server, sessions, scenario) in lineup.items():
                    if name == "conditional_get":
                        sessions = refresh_etags(server.url, sessions)
                    path = write_sessions(sessions, directory, f"{role}-{name}")
                    if round_ == 0:
                        run_wrk(wrk, server.url, scenario, path, args, 1)  # warm-up, not counted
                    cpu_before = server.cpu_seconds()
                    run = run_wrk(wrk, server.url, scenario, path, args, args.seconds)
                    run.cpu_us = (server.cpu_seconds() - cpu_before) / run.requests * 1e6
                    results[name][role].runs.append(run)
                    log(
                        f"  {role:8} {run.rps:8.0f} req/s  {run.cpu_us:6.0f} us CPU/request  "
                        f"p99 {run.p99_ms:6.1f} ms  {run.statuses}"
                    )
        memory = redis_memory_per_user(app_sessions)
        # After every scenario has run through them: what a worker holds once warm.
        worker_memory = {role: server.worker_rss_mib() for role, (server, _) in servers.items()}
    sql = sql_per_request(database)

    problems = check_statuses(results)
    report = "\n".join(
        (
            render(results, sql, memory, args),
            render_cpu(results),
            render_worker_memory(worker_memory),
        )
    )
    print(report)
    payload = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "figures": {
            name: {role: [asdict(run) for run in figure.runs] for role, figure in roles.items()}
            for name, roles in results.items()
        },
        "sql_per_request": sql,
        "redis_bytes_per_user": memory,
        "worker_rss_mib": worker_memory,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = args.json or RESULTS_DIR / f"bench-{args.users}.json"
    target.write_text(json.dumps(payload, indent=2))
    chart_path = args.chart or RESULTS_DIR / f"bench-{args.users}.png"
    chart(results, args.users, chart_path)
    log(f"results written to {target} and {chart_path}")
    if problems:
        print("\nREFUSED: unexpected responses:\n  " + "\n  ".join(problems))
        return 1
    return 0


def chart(results: dict[str, dict[str, Figure]], users: int, path: Path) -> None:
    """Bar chart of requests per second per scenario, every server side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    labels = [SCENARIOS[name][0].replace(", ", "\n") for name in names]
    figure, axes = plt.subplots(figsize=(11, 5.2), dpi=110)
    width = 0.2
    colours = {"floor": "#9aa5b4", "bound": "#64748b", "peer": "#f59e0b", "app": "#1d4ed8"}
    names_of = {
        "floor": "floor",
        "bound": "bound (floor + the round trips)",
        "peer": "plain peer",
        "app": "app",
    }
    for index, role in enumerate(ROLES):
        offset = (index - 1.5) * width
        rates = [results[name][role].rps for name in names]
        bars = axes.bar(
            [p + offset for p in range(len(names))],
            rates,
            width,
            label=names_of[role],
            color=colours[role],
        )
        if role != "app":
            continue
        for bar, name in zip(bars, names, strict=True):
            ratio = results[name]["app"].rps / results[name]["floor"].rps
            axes.annotate(
                f"{ratio:.2f}x",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=9,
            )
    axes.set_xticks(list(range(len(names))), labels, fontsize=8)
    axes.set_ylabel("requests per second")
    axes.set_title(f"App against the floor, the bound and a plain peer, {users:,} users")
    # One row of legend above the bars, with room made for it: in a corner it hid the top
    # of whichever bars were tallest there.
    axes.set_ylim(top=axes.get_ylim()[1] * 1.12)
    axes.legend(loc="upper center", ncol=len(ROLES), fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def check_statuses(results: dict[str, dict[str, Figure]]) -> list[str]:
    """Every response must be the status its scenario expects; list the exceptions."""
    problems = []
    for name, roles in results.items():
        expected = {str(code) for code in SCENARIOS[name][1]}
        for role, figure in roles.items():
            for run in figure.runs:
                unexpected = {k: v for k, v in run.statuses.items() if k not in expected}
                if unexpected:
                    problems.append(f"{name} on {role}: {unexpected}")
    return problems


def verdict(name: str, results: dict[str, dict[str, Figure]]) -> str:
    """The scenario's targets and whether this run met them."""
    app = results[name]["app"].rps
    if name == "cold_get":
        ratio = cold_to_warm(results[name])
        outcome = "met" if ratio >= COLD_TARGET else "MISSED"
        return f"{COLD_TARGET:.2f}x warm (paired by round): {ratio:.2f}x {outcome}"
    if name not in TARGETS:
        return ""
    floor_target, peer_target = TARGETS[name]
    parts = [(floor_target, app / results[name]["floor"].rps, "floor")]
    if peer_target is not None:
        parts.append((peer_target, app / results[name]["peer"].rps, "peer"))
    return ", ".join(
        f"{target:.2f}x {what} {'met' if ratio >= target else 'MISSED'}"
        for target, ratio, what in parts
    )


def cold_to_warm(cold_scenario: dict[str, Figure]) -> float:
    """The median over rounds of the cold read's rate against the warm read's beside it."""
    pairs = zip(cold_scenario["app"].runs, cold_scenario[PAIRED_WARM].runs, strict=True)
    return statistics.median(cold.rps / warm.rps for cold, warm in pairs)


def render(
    results: dict[str, dict[str, Figure]],
    sql: dict[str, float],
    memory: int,
    args: argparse.Namespace,
) -> str:
    """The Markdown table of the run."""
    lines = [
        f"users: {args.users:,}; gunicorn as gunicorn.conf.py serves production, with "
        f"workers {args.workers or 'default'}, worker class {args.worker_class or 'default'}, "
        f"threads {args.worker_threads or 'default'}; wrk: {args.threads} threads, "
        f"{args.connections} "
        f"connections; {args.rounds} x {args.seconds:.0f} s per server per scenario, "
        "interleaved; medians",
        "",
        "| scenario | app req/s | floor req/s | bound req/s | peer req/s | app/floor "
        "| bound/floor | app/bound | app/peer | target | app p50 ms | app p99 ms | peer p99 ms "
        "| SQL/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: "
        "| ---: | ---: |",
    ]
    for name, roles in results.items():
        app, floor, bound, peer = roles["app"], roles["floor"], roles["bound"], roles["peer"]
        lines.append(
            f"| {SCENARIOS[name][0]} | {app.rps:,.0f} | {floor.rps:,.0f} | {bound.rps:,.0f} | "
            f"{peer.rps:,.0f} | {app.rps / floor.rps:.2f}x | {bound.rps / floor.rps:.2f}x | "
            f"{app.rps / bound.rps:.2f}x | {app.rps / peer.rps:.2f}x | "
            f"{verdict(name, results)} | {app.p50_ms:.1f} | {app.p99_ms:.1f} | "
            f"{peer.p99_ms:.1f} | {sql.get(name, float('nan')):.2f} |"
        )
    met = "met" if memory <= MEMORY_TARGET else "MISSED"
    lines += [
        "",
        f"Redis memory per cached user: {memory} bytes (MEMORY USAGE of one key; "
        f"target {MEMORY_TARGET}: {met})",
    ]
    return "\n".join(lines)


def render_cpu(results: dict[str, dict[str, Figure]]) -> str:
    """CPU time per request of each server, and the app's against the floor's and the bound's.

    Steadier than requests per second on a shared machine: wrk and the databases take their
    share of the cores, but not of a server's own CPU time.
    """
    lines = [
        "",
        "CPU time per request, microseconds (the server's workers, user and system; medians):",
        "",
        "| scenario | floor | bound | peer | app | floor/app | bound/app | peer/app |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, roles in results.items():
        floor, bound, peer, app = (roles[role].cpu_us for role in ROLES)
        lines.append(
            f"| {SCENARIOS[name][0]} | {floor:,.0f} | {bound:,.0f} | {peer:,.0f} | {app:,.0f} | "
            f"{floor / app:.2f}x | {bound / app:.2f}x | {peer / app:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def render_worker_memory(worker_memory: dict[str, list[float]]) -> str:
    """Resident memory per gunicorn worker of each server, after the run."""
    parts = [
        f"{role} {', '.join(f'{size:.0f}' for size in sizes)}"
        for role, sizes in worker_memory.items()
    ]
    return "Resident memory per worker after the run, MiB: " + "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
