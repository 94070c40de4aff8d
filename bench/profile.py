"""``make bench-profile``: where each scenario's time goes, and its round trips.

Runs the real app in-process against the benchmark database and Redis (the requests of
``bench.sqlcount``), counts SQL statements and Redis commands per request, and prints the
functions that take the most time under cProfile. In-process, so without gunicorn and the
network stack: what it shows is the app's own share of each request.

Each scenario also prints the Python function calls per request, by library: unlike time,
they do not move with whatever else a shared machine is running (two identical servers
differed by a fifth in CPU time per request in one run), so a change to the request path
shows its effect there first. The requests go through Flask's test client, whose own calls
(about 550 per request) are counted too.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import Counter
from types import CodeType

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


def calls_by_library(profiler: cProfile.Profile) -> Counter[str]:
    """The profiled function calls by where the function lives: a package, the app's
    module, the standard library's module, or built-ins."""
    calls: Counter[str] = Counter()
    for entry in profiler.getstats():
        calls[_library_of(entry.code)] += entry.callcount
    return calls


def _library_of(code: CodeType | str) -> str:
    """Where a profiled function lives; a built-in has no code object, only a description."""
    if isinstance(code, str):
        return "built-ins"
    path = code.co_filename
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/app/" in path:
        return "app/" + path.rsplit("/app/", 1)[1]
    return "stdlib " + path.rsplit("/", 1)[-1]


def main() -> int:
    """Profile each scenario and print its round trips and hottest functions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario")
    parser.add_argument("--top", type=int, default=25, help="functions listed per scenario")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--scenarios", default="")
    parser.add_argument("--cold", action="store_true", help="disable the cache")
    parser.add_argument("--libraries", type=int, default=10, help="libraries listed by calls")
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
        by_library = calls_by_library(profiler)
        print(
            f"\n=== {name}: {elapsed / args.requests * 1000:.3f} ms per request in-process "
            f"(profiled), SQL {statements / args.requests:.2f}, "
            f"Redis commands {commands / args.requests:.2f}, "
            f"{sum(by_library.values()) / args.requests:.0f} function calls per request"
        )
        print(
            "calls per request by library: "
            + ", ".join(
                f"{where} {count / args.requests:.0f}"
                for where, count in by_library.most_common(args.libraries)
            )
        )
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
        print("\n".join(out.getvalue().splitlines()[6:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
