"""The shortened fault drill: Redis killed and hung, PostgreSQL restarted, under mixed load.

``make bench-faults`` runs the long form and prints latencies; this asserts counts only.
"""

from __future__ import annotations

from bench.faults import Ledger, Outcome, drill, problems_in, render, server_errors


def test_no_5xx_no_hang_nothing_lost_under_faults() -> None:
    report = drill(phase_seconds=0.8, clients=3, users=20)
    assert report.acknowledged_writes > 0
    assert problems_in(report) == [], render(report)
    phases = report.phases
    assert {"redis killed", "redis hanging", "postgres down"} <= set(phases)
    # Warm reads keep answering while the database is down.
    down = phases["postgres down"]["statuses"]
    assert down["api_get"].get(200, 0) > 0


def test_a_503_counts_against_the_app_only_when_sent_after_the_database_was_back() -> None:
    ledger = Ledger(fault_at={"postgres down": 10.0, "postgres restarted": 20.0})
    ledger.outcomes = [
        # Sent while the server was starting, answered just after it was ready.
        Outcome("postgres restarted", "patch", 503, seconds=0.5, started=19.8),
        # Sent before the stop, cut off by it.
        Outcome("postgres down", "patch", 503, seconds=0.5, started=9.8),
        # Sent once the server accepted connections again: the app's fault.
        Outcome("postgres restarted", "patch", 503, seconds=0.01, started=20.1),
        # Sent and answered before the stop.
        Outcome("redis recovered", "api_get", 503, seconds=0.01, started=9.0),
        # Never acceptable, outage or not.
        Outcome("postgres down", "api_get", 500, seconds=0.01, started=12.0),
    ]
    assert server_errors(ledger) == [
        "postgres restarted: 1 patch requests answered 503",
        "redis recovered: 1 api_get requests answered 503",
        "postgres down: 1 api_get requests answered 500",
    ]
