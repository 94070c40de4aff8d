"""Fixed-window counters: the one way the app counts attempts against a limit.

A limit such as ``"30 per 10 seconds; 1000 per hour"`` is a set of windows aligned to the
clock; an attempt is counted in every window of the set unless one of them is full, so a
refused attempt costs nothing. Redis counts them atomically with ``COUNT_IN_WINDOWS`` (a Lua
function other scripts include); ``LocalWindows`` counts the same windows in this process's
memory, while Redis cannot be reached or where there is none.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Iterable

from limits import parse_many

#: One window of a limit: its counter's key, how many attempts it allows, and the Unix time
#: it ends.
Window = tuple[str, int, int]

# count_in_windows(k, n, a): KEYS[k .. k+n-1] are the counters of n windows; ARGV[a .. a+n-1]
# each window's limit, ARGV[a+n .. a+2n-1] the Unix time it ends. Counts one attempt in every
# window unless one of them is full; returns 0 when counted, or the seconds until the full
# window ends.
COUNT_IN_WINDOWS = """
local function count_in_windows(k, n, a)
  local now = tonumber(redis.call('TIME')[1])
  for i = 0, n - 1 do
    local used = tonumber(redis.call('GET', KEYS[k + i]) or '0')
    if used >= tonumber(ARGV[a + i]) then return math.max(tonumber(ARGV[a + n + i]) - now, 1) end
  end
  for i = 0, n - 1 do
    if redis.call('INCR', KEYS[k + i]) == 1 then
      redis.call('EXPIREAT', KEYS[k + i], ARGV[a + n + i])
    end
  end
  return 0
end
"""

#: A script that only counts: KEYS the windows' counters, ARGV their limits, then their ends.
COUNT = COUNT_IN_WINDOWS + "return count_in_windows(1, #KEYS, 1)"

#: How many counters ``LocalWindows`` holds before it drops the windows that ended.
PRUNE_AT = 10_000


def windows(limits: str, name: str) -> list[Window]:
    """The windows of ``limits`` that hold now, their counters named after ``name``."""
    now = int(time.time())
    found = []
    for seconds, amount in _periods(limits):
        index = now // seconds
        found.append((f"{name}:{seconds}:{index}", amount, (index + 1) * seconds))
    return found


@functools.cache
def _periods(limits: str) -> tuple[tuple[int, int], ...]:
    """(seconds, attempts) of each window of ``limits``: parsed once, not on every attempt."""
    return tuple((int(item.get_expiry()), int(item.amount)) for item in parse_many(limits))


def arguments(counted: list[Window]) -> tuple[list[str], list[int]]:
    """``counted`` as ``count_in_windows`` takes them: the keys, then limits and ends."""
    return (
        [key for key, _, _ in counted],
        [amount for _, amount, _ in counted] + [ends for _, _, ends in counted],
    )


class LocalWindows:
    """The same counters in this process's memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: dict[str, tuple[int, float]] = {}

    def count(self, counted: list[Window]) -> int:
        """Count one attempt in every window unless one is full; else the seconds to wait."""
        now = time.time()
        with self.lock:
            if len(self.counters) >= PRUNE_AT:
                self.counters = {key: v for key, v in self.counters.items() if v[1] > now}
            for key, amount, ends in counted:
                used, until = self.counters.get(key, (0, 0.0))
                if until > now and used >= amount:
                    return max(1, math.ceil(ends - now))
            for key, _amount, ends in counted:
                used, until = self.counters.get(key, (0, 0.0))
                self.counters[key] = (used + 1, until) if until > now else (1, float(ends))
        return 0

    def give_back(self, keys: Iterable[str]) -> None:
        """Take one attempt back from each of ``keys`` that still counts one."""
        with self.lock:
            for key in keys:
                used, until = self.counters.get(key, (0, 0.0))
                if used > 0:
                    self.counters[key] = (used - 1, until)
