"""``make bench-profile``: where each scenario's time goes, and its round trips.

Runs the real app in-process against the benchmark database and Redis (the requests of
``bench.sqlcount``), counts SQL statements and Redis commands per request, and prints the
functions that take the most time under cProfile. In-process, so without gunicorn and the
network stack: what it shows is the app's own share of each request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import redis
from sqlalchemy import event

from app.extensions import db
from bench.common import ensure_services, prepare_database
from bench.run import REDIS_URL
from bench.sqlcount import scenario_calls


def redis_commands(client: redis.Redis) -> int:
    """Commands Redis has processed so far (the INFO call itself included)."""
    stats: dict[str, int] = client.info("stats")
    return int(stats["total_commands_processed"])


def main() -> int:
    """Profile each scenario and print its round trips and hottest functions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario")
    parser.add_argument("--top", type=int, default=25, help="functions listed per scenario")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--scenarios", default="")
    parser.add_argument("--cold", action="store_true", help="disable the cache")
    args = parser.parse_args()

    ensure_services()
    database = prepare_database(f"bench_{args.users}", args.users)
    app, calls = scenario_calls(database, REDIS_URL, cold=args.cold)
    wanted = [name for name in args.scenarios.split(",") if name] or list(calls)
    counter = redis.Redis.from_url(REDIS_URL)
    statements = 0

    def count_statement(*_: object) -> None:
        nonlocal statements
        statements += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count_statement)
    for name in wanted:
        call = calls[name]
        for _ in range(20):
            call()
        statements = 0
        before = redis_commands(counter)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.requests):
            call()
        profiler.disable()
        elapsed = time.perf_counter() - started
        commands = redis_commands(counter) - before - 1
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(
            f"\n=== {name}: {elapsed / args.requests * 1000:.3f} ms per request in-process "
            f"(profiled), SQL {statements / args.requests:.2f}, "
            f"Redis commands {commands / args.requests:.2f} per request"
        )
        print("\n".join(out.getvalue().splitlines()[6:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
