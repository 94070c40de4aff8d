"""Throttles for anonymous work that costs a password hash: sign-in and sign-up.

Two shapes, each counted atomically *before* the hash is computed, so concurrent attempts
cannot slip past a limit:

- **Per client address**, fixed windows (``"5 per minute; 20 per hour"``): sign-up counts
  every attempt, sign-in only failed ones (a success gives its slot back).
- **Per account**, exponential back-off: the first ``SIGNIN_FREE_FAILURES`` failures cost
  nothing; after that each attempt must wait twice as long as the one before, from one
  second up to ``SIGNIN_MAX_DELAY``. So guessing from many addresses is slow, and an attacker
  can keep a victim waiting at most that long. A successful sign-in clears it.

Counters live in the storage ``RATELIMIT_STORAGE_URI`` names (by default the cache's Redis),
through one Lua script per check, and in this process's memory while it cannot be reached.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from itsdangerous import BadSignature, URLSafeSerializer
from limits.storage import MemoryStorage, storage_from_string
from redis.exceptions import RedisError

from app.counters import COUNT, LocalWindows, Window, arguments, windows

log = logging.getLogger(__name__)

# KEYS[1]: the account's hash {f = attempts, t = next allowed, ms}. ARGV: free, base ms,
# max ms, lifetime s. Returns {0, attempts left before a wait} or {1, ms to wait}.
_BACK_OFF = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'f', 't')
local attempts = tonumber(state[1] or '0')
local next_at = tonumber(state[2] or '0')
if ms < next_at then return {1, next_at - ms} end
attempts = attempts + 1
local free = tonumber(ARGV[1])
if attempts >= free then
  local delay = math.min(tonumber(ARGV[2]) * 2 ^ (attempts - free), tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'f', attempts, 't', ms + delay)
else
  redis.call('HSET', KEYS[1], 'f', attempts)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {0, math.max(free - attempts, 0)}
"""

# Give one attempt back in each window that still counts it.
_GIVE_BACK = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""

#: How long an account's back-off is remembered after its last failed attempt.
BACK_OFF_LIFETIME = 3600

#: How many accounts the in-memory fallback remembers before it drops the lapsed ones.
PRUNE_AT = 10_000


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may go ahead, and if not, for how long to wait."""

    allowed: bool
    retry_after: int = 0
    #: Attempts left before the next one must wait (sign-in per account), if known.
    remaining: int | None = None
    #: The counters this attempt was counted in, to give it back to exactly those.
    keys: tuple[str, ...] = ()


ALLOWED = Verdict(True)


class _LocalBackOffs:
    """Account back-offs in this process's memory, for when Redis cannot be reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accounts: dict[str, tuple[int, float, float]] = {}

    def back_off(self, key: str, free: int, base: float, most: float) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            if len(self.accounts) >= PRUNE_AT:
                self.accounts = {k: v for k, v in self.accounts.items() if v[2] > now}
            attempts, next_at, until = self.accounts.get(key, (0, 0.0, 0.0))
            if until <= now:
                attempts, next_at = 0, 0.0
            if now < next_at:
                return 1, next_at - now
            attempts += 1
            if attempts >= free:
                next_at = now + min(base * 2 ** (attempts - free), most)
            self.accounts[key] = (attempts, next_at, now + BACK_OFF_LIFETIME)
            return 0, max(free - attempts, 0)

    def clear(self, key: str) -> None:
        with self.lock:
            self.accounts.pop(key, None)


_local_back_offs = _LocalBackOffs()
_local_windows = LocalWindows()
_reported = threading.Event()


def init_app(app: Flask) -> None:
    """Open the storage ``app``'s throttles count in (``RATELIMIT_STORAGE_URI``).

    A ``limits`` storage, which knows every way the cache can reach Redis (one server,
    Sentinel, Cluster) and memory; the throttles use its Redis client directly.
    """
    options = dict(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {})
    storage = storage_from_string(str(app.config["RATELIMIT_STORAGE_URI"]), **options)
    app.extensions["throttle_storage"] = storage


def _redis() -> Any:
    """The Redis client of the throttles' storage, or ``None`` for memory."""
    storage = current_app.extensions["throttle_storage"]
    if isinstance(storage, MemoryStorage) or not hasattr(storage, "get_connection"):
        return None
    return storage.get_connection()


def _unreachable(exc: Exception) -> None:
    if not _reported.is_set():
        _reported.set()
        log.warning("Rate limit storage unreachable, counting in memory: %s", exc)


def _prefix() -> str:
    return str(current_app.config.get("RATELIMIT_KEY_PREFIX") or "")


def _windows(limits: str, scope: str, who: str) -> list[Window]:
    """The windows of ``limits`` that hold now for ``who``."""
    # A hash tag keeps one client's windows in one Redis Cluster slot.
    return windows(limits, f"{_prefix()}throttle:{{{scope}:{who}}}")


def count(limits: str, scope: str, who: str) -> Verdict:
    """Count one attempt by ``who`` against ``limits``, unless a window is full."""
    counted = _windows(limits, scope, who)
    client = _redis()
    try:
        if client is None:
            wait = _local_windows.count(counted)
        else:
            keys, args = arguments(counted)
            wait = int(client.eval(COUNT, len(keys), *keys, *args))
    except (RedisError, OSError) as exc:
        _unreachable(exc)
        wait = _local_windows.count(counted)
    if wait:
        return Verdict(False, retry_after=wait)
    return Verdict(True, keys=tuple(key for key, _, _ in counted))


def give_back(verdict: Verdict) -> None:
    """Return the slots of an attempt that turned out not to count (a successful sign-in)."""
    keys = list(verdict.keys)
    if not keys:
        return
    client = _redis()
    if client is None:
        _local_windows.give_back(keys)
        return
    try:
        client.eval(_GIVE_BACK, len(keys), *keys)
    except (RedisError, OSError) as exc:
        _unreachable(exc)
        _local_windows.give_back(keys)


def _digest(email: str) -> str:
    # Hashed, so neither the storage nor a cookie holds addresses.
    return hashlib.sha256(email.encode()).hexdigest()[:24]


def _account_key(email: str) -> str:
    # Unknown emails are throttled alike, so the throttle says nothing of who has an account.
    return f"{_prefix()}throttle:account:{_digest(email)}"


#: A signed cookie naming (by digest) the account this browser last signed in to.
DEVICE_COOKIE = "known_device"
DEVICE_MAX_AGE = 365 * 24 * 3600


def _devices() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.secret_key), salt="known-device")


def device_token(email: str) -> str:
    """The cookie value that marks this browser as one ``email`` signed in from."""
    return str(_devices().dumps(_digest(email)))


def known_device(token: str | None, email: str) -> bool:
    """Whether ``token`` says this browser signed in to ``email`` before."""
    if not token:
        return False
    try:
        return bool(_devices().loads(token) == _digest(email))
    except BadSignature:
        return False


def account_attempt(email: str) -> Verdict:
    """Count a sign-in attempt for ``email`` under its back-off, or say how long to wait."""
    config = current_app.config
    free = int(config["SIGNIN_FREE_FAILURES"])
    most = float(config["SIGNIN_MAX_DELAY"])
    key = _account_key(email)
    client = _redis()
    try:
        if client is None:
            refused, value = _local_back_offs.back_off(key, free, 1.0, most)
        else:
            refused, value = client.eval(
                _BACK_OFF, 1, key, free, 1000, int(most * 1000), BACK_OFF_LIFETIME
            )
            value = int(value) / 1000 if refused else int(value)
    except (RedisError, OSError) as exc:
        _unreachable(exc)
        refused, value = _local_back_offs.back_off(key, free, 1.0, most)
    if refused:
        return Verdict(False, retry_after=max(1, math.ceil(value)))
    return Verdict(True, remaining=int(value))


def account_succeeded(email: str) -> None:
    """A correct password: the account's back-off starts over."""
    key = _account_key(email)
    client = _redis()
    if client is None:
        _local_back_offs.clear(key)
        return
    try:
        client.delete(key)
    except (RedisError, OSError) as exc:
        _unreachable(exc)
        _local_back_offs.clear(key)
