"""``make bench-scale``: warm GET and PATCH with a million users against ten thousand.

Both databases are served at once by identical gunicorn set-ups and measured interleaved, so
the ratio shows what the table's size costs and nothing else.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import redis

from bench.common import ensure_services, ensure_wrk, flask_env, gunicorn, log, prepare_database
from bench.common import sign_in as sign_in_user
from bench.run import REDIS_URL, RESULTS_DIR, Figure, run_wrk, write_sessions

SCENARIOS = ("warm_get", "patch")


def main() -> int:
    """Run both sizes side by side and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--baseline-users", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn.conf.py's unless given")
    args = parser.parse_args()

    ensure_services()
    wrk = ensure_wrk()
    sizes = {"small": args.baseline_users, "large": args.users}
    databases = {name: prepare_database(f"bench_{n}", n) for name, n in sizes.items()}
    redis.Redis.from_url(REDIS_URL).flushdb()
    results: dict[str, dict[str, Figure]] = {
        s: {"small": Figure(), "large": Figure()} for s in SCENARIOS
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        gunicorn(
            "small", "wsgi:app", flask_env(databases["small"], REDIS_URL), args.workers
        ) as small,
        gunicorn(
            "large", "wsgi:app", flask_env(databases["large"], REDIS_URL), args.workers
        ) as large,
    ):
        servers = {"small": small, "large": large}
        files = {}
        for name, server in servers.items():
            # Users spread over the whole table, so the large run really touches a large table.
            step = max(1, sizes[name] // args.sessions)
            emails = [f"bench{1 + i * step}@example.com" for i in range(args.sessions)]
            log(f"signing in {len(emails)} users on the {sizes[name]:,}-user database")
            files[name] = write_sessions(
                [sign_in_user(server.url, email) for email in emails], Path(tmp), name
            )
        for scenario in SCENARIOS:
            log(f"scenario {scenario}")
            for round_ in range(args.rounds):
                for name, server in servers.items():
                    if round_ == 0:
                        run_wrk(wrk, server.url, scenario, files[name], args, 1)
                    run = run_wrk(wrk, server.url, scenario, files[name], args, args.seconds)
                    results[scenario][name].runs.append(run)
                    log(f"  {sizes[name]:>9,} users {run.rps:8.0f} req/s  {run.statuses}")

    lines = [
        f"| scenario | {args.baseline_users:,} users req/s | {args.users:,} users req/s "
        "| ratio | within 5 % |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    failed = False
    for scenario, figures in results.items():
        ratio = figures["large"].rps / figures["small"].rps
        ok = ratio >= 0.95
        failed |= any(
            set(run.statuses) != {"200"} for figure in figures.values() for run in figure.runs
        )
        lines.append(
            f"| {scenario} | {figures['small'].rps:,.0f} | {figures['large'].rps:,.0f} "
            f"| {ratio:.3f} | {'yes' if ok else 'NO'} |"
        )
    print("\n".join(lines))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"scale-{args.users}.json").write_text(
        json.dumps(
            {
                scenario: {name: [run.rps for run in fig.runs] for name, fig in figs.items()}
                for scenario, figs in results.items()
            },
            indent=2,
        )
    )
    if failed:
        print("REFUSED: some responses were not 200")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
