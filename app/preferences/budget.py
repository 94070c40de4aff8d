"""A user's budget of settings writes.

An adapter that saves settings for a person opens a budget for the request
(``charged_to``), and its write is counted once against the limit: a write that changes the
row in the same Redis script that places its tombstone (``cache.entries``), so counting
costs no round trip of its own; one that changes nothing, when it is confirmed. Over the
limit nothing is written (``Exhausted``). A write that is invalid or conflicts is refused
before it is counted. Where no shared cache answers, the same windows are counted in this
process's memory.

Writes made without a budget (a password change, an administrator's) are never limited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from app.counters import LocalWindows, Window, windows


class Exhausted(Exception):
    """The user's writes are over the limit; nothing was written."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"write limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Budget:
    user_id: int
    limits: str
    charged: bool = False


_open: ContextVar[_Budget | None] = ContextVar("write_budget", default=None)
_in_memory = LocalWindows()


@contextmanager
def charged_to(user_id: int, limits: str) -> Iterator[None]:
    """Count the block's first write of ``user_id``'s row against ``limits``."""
    token = _open.set(_Budget(user_id, limits))
    try:
        yield
    finally:
        _open.reset(token)


def to_charge(user_id: int, prefix: str) -> list[Window]:
    """The windows a write of ``user_id``'s row must be counted in now; none to count.

    Their counters are named after ``prefix`` (the cache's key prefix), here and in Redis.

    Once per budget: a write that tries twice (its compare-and-set lost to another write)
    is one write. Then ``charge`` with what counting them answered.
    """
    budget = _open.get()
    if budget is None or budget.charged or budget.user_id != user_id:
        return []
    # A hash tag keeps a user's windows in one Redis Cluster slot.
    return windows(budget.limits, f"{prefix}settings_writes:{{{user_id}}}")


def charge_in_memory(counted: list[Window]) -> None:
    """Count ``counted`` in this process's memory; see ``charge``."""
    charge(_in_memory.count(counted) if counted else 0)


def charge(wait: int) -> None:
    """Record what counting answered: 0 counted the write, else the seconds to wait.

    :raise Exhausted: the limit is reached.
    """
    if wait > 0:
        raise Exhausted(wait)
    budget = _open.get()
    if budget is not None:
        budget.charged = True
