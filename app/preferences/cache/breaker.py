"""A circuit breaker per process: a Redis that fails is left alone for a while.

Closed (``open_until`` is ``None``) while Redis answers. A failure opens it for
``retry_after`` seconds; after that one operation at a time probes Redis (half-open) while
the others keep skipping it, so a hanging server costs one timeout per period, not one per
request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

log = logging.getLogger("app.preferences.cache")

#: Everything a Redis client may raise when the server is away, slow or misconfigured.
#: ``RedisClusterException`` does not derive from ``RedisError``.
CACHE_ERRORS = (RedisError, RedisClusterException, OSError)


class CacheUnavailable(Exception):
    """The cache could not be reached in time, or the breaker says not to try."""


@dataclass
class Breaker:
    """The breaker's state, shared by the threads of one process."""

    retry_after: float
    open_until: float | None = None
    probing: bool = False
    #: When the breaker last opened: an operation begun before then says nothing of now.
    tripped_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def available(self) -> bool:
        """Whether the breaker would let an operation try the cache now (no side effects)."""
        open_until = self.open_until
        return open_until is None or time.monotonic() >= open_until

    def acquire(self) -> bool:
        """Claim permission for one cache operation: always when closed, one probe when due."""
        if self.open_until is None:
            return True
        with self.lock:
            if self.open_until is None:
                return True
            if self.probing or time.monotonic() < self.open_until:
                return False
            self.probing = True
            return True

    def succeeded(self, started: float) -> None:
        """An operation begun at ``started`` worked: close the breaker, unless it tripped since."""
        if self.open_until is not None or self.probing:
            with self.lock:
                if started < self.tripped_at:
                    return
                if self.open_until is not None:
                    log.info("Settings cache reachable again")
                self.open_until = None
                self.probing = False

    def release(self) -> None:
        """An operation ended without saying anything about Redis: end a probe, if any."""
        if self.probing:
            with self.lock:
                self.probing = False

    def trip(self, exc: BaseException) -> None:
        """Record a failure: stop asking the cache for ``retry_after`` seconds."""
        with self.lock:
            if self.open_until is None:
                log.warning(
                    "Settings cache unreachable, serving from the database: %s: %s",
                    type(exc).__name__,
                    exc,
                )
            self.tripped_at = time.monotonic()
            self.open_until = self.tripped_at + self.retry_after
            self.probing = False

    def call(self, operation: Callable[[], Any]) -> Any:
        """Run one Redis operation; a failure trips the breaker and becomes ``CacheUnavailable``.

        :raise CacheUnavailable: the breaker is open, or the operation failed.
        """
        if not self.acquire():
            raise CacheUnavailable
        started = time.monotonic()
        try:
            result = operation()
        except CACHE_ERRORS as exc:
            self.trip(exc)
            raise CacheUnavailable from exc
        except BaseException:
            self.release()
            raise
        self.succeeded(started)
        return result
