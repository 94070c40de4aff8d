"""The shortened fault drill: Redis killed and hung, PostgreSQL restarted, under mixed load.

``make bench-faults`` runs the long form and prints latencies; this asserts counts only.
"""

from __future__ import annotations

from bench.faults import drill, problems_in, render


def test_no_5xx_no_hang_nothing_lost_under_faults() -> None:
    report = drill(phase_seconds=0.8, clients=3, users=20)
    assert report.acknowledged_writes > 0
    assert problems_in(report) == [], render(report)
    phases = report.phases
    assert {"redis killed", "redis hanging", "postgres down"} <= set(phases)
    # Warm reads keep answering while the database is down.
    down = phases["postgres down"]["statuses"]
    assert down["api_get"].get(200, 0) > 0
