"""The settings cache: one entry per user, read-through, refreshed on write, safe in outages.

Entries are ``"<version>|<json>"`` strings under ``user_settings:<id>``. Every write stores the
new entry only if the cached one is older (a Lua script on Redis), so a slow reader can never
put back a value that a writer has already replaced. Redis errors never reach a view: a
circuit breaker skips the cache for a while after a failure, and a write that could not
refresh the cache is recorded in ``pending_cache_invalidations`` and applied before the cache
is trusted again. ``docs/caching.md`` explains the design.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import delete, func, insert, select

from app.extensions import cache, db
from app.models import PendingInvalidation

log = logging.getLogger(__name__)

#: Present while no write is known to have missed the cache; see ``_reconcile``.
TRUSTED_KEY = "user_settings:trusted"

# Store ARGV[2] under KEYS[1] unless the entry there is as new or newer (ARGV[1] = version).
_STORE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

Loader = Callable[[int], tuple[int, str] | None]


def settings_key(user_id: int) -> str:
    """The cache key of one user's settings entry; the only place keys are built."""
    return f"user_settings:{user_id}"


class CacheUnavailable(Exception):
    """The cache could not be reached in time."""


@dataclass
class CacheState:
    """Per-process health of the cache behind one app."""

    retry_after: float
    open_until: float = 0.0
    #: Set by a failure; cleared once pending invalidations have been applied.
    outage: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def available(self) -> bool:
        """Whether the breaker lets a request try the cache now."""
        return time.monotonic() >= self.open_until

    def trip(self, exc: BaseException) -> None:
        """Record a failure: stop asking the cache for ``retry_after`` seconds."""
        with self.lock:
            self.open_until = time.monotonic() + self.retry_after
            if not self.outage:
                self.outage = True
                log.warning("Settings cache unreachable, serving from the database: %s", exc)


def init_app(app: Any) -> None:
    """Attach the per-process cache state to ``app``."""
    app.extensions["settings_cache"] = CacheState(retry_after=app.config["CACHE_RETRY_AFTER"])


def _state() -> CacheState:
    state: CacheState = current_app.extensions["settings_cache"]
    return state


def _prefixed(key: str) -> str:
    return str(current_app.config.get("CACHE_KEY_PREFIX") or "") + key


def _redis() -> Any:
    """The redis-py client behind Flask-Caching, or ``None`` for the in-process cache."""
    return getattr(cache.cache, "_write_client", None)


_local_lock = threading.Lock()


def _get_many(*keys: str) -> list[str | None]:
    client = _redis()
    if client is None:
        return [cache.get(key) for key in keys]
    values = client.mget([_prefixed(key) for key in keys])
    return [value.decode() if isinstance(value, bytes) else value for value in values]


def _store_if_newer(key: str, version: int, payload: str) -> None:
    entry = f"{version}|{payload}"
    ttl = int(current_app.config["SETTINGS_CACHE_TTL"])
    client = _redis()
    if client is None:
        with _local_lock:
            current = cache.get(key)
            if current is None or int(current.partition("|")[0]) < version:
                cache.set(key, entry, timeout=ttl)
        return
    client.eval(_STORE_IF_NEWER, 1, _prefixed(key), version, entry, ttl)


def _delete(*keys: str) -> None:
    client = _redis()
    if client is None:
        for key in keys:
            cache.delete(key)
    elif keys:
        client.delete(*[_prefixed(key) for key in keys])


def _set(key: str, value: str, ttl: int) -> None:
    client = _redis()
    if client is None:
        cache.set(key, value, timeout=ttl)
    else:
        client.set(_prefixed(key), value, ex=ttl)


def _guard(operation: Callable[[], Any]) -> Any:
    """Run one cache operation; a failure trips the breaker and becomes ``CacheUnavailable``."""
    state = _state()
    if not state.available():
        raise CacheUnavailable
    try:
        return operation()
    except (RedisError, OSError) as exc:
        state.trip(exc)
        raise CacheUnavailable from exc


def _reconcile() -> None:
    """Drop entries that writes could not refresh while the cache was away, then trust it.

    Runs in its own transaction so it never mixes with a request's session.
    """
    with db.engine.begin() as connection:
        rows = connection.execute(select(PendingInvalidation.id, PendingInvalidation.user_id))
        pending = rows.all()
        if pending:
            _guard(lambda: _delete(*{settings_key(user_id) for _, user_id in pending}))
            newest = max(row_id for row_id, _ in pending)
            connection.execute(delete(PendingInvalidation).where(PendingInvalidation.id <= newest))
    ttl = int(current_app.config["CACHE_TRUST_TTL"])
    _guard(lambda: _set(TRUSTED_KEY, "1", ttl))
    state = _state()
    if state.outage:
        state.outage = False
        log.warning("Settings cache reachable again; %d stale entries dropped", len(pending))


def read_through(user_id: int, load: Loader) -> str | None:
    """Return the cached payload for ``user_id``, loading and caching it on a miss.

    :param load: reads ``(version, payload)`` from the database, or ``None`` if no such user.
    """
    key = settings_key(user_id)
    try:
        if _state().outage:
            _reconcile()
        entry, trusted = _guard(lambda: _get_many(key, TRUSTED_KEY))
        if trusted is None:
            _reconcile()
        elif entry is not None:
            return str(entry).partition("|")[2]
    except CacheUnavailable:
        loaded = load(user_id)
        return loaded[1] if loaded else None
    loaded = load(user_id)
    if loaded is None:
        return None
    version, payload = loaded
    store(user_id, version, payload, record_failure=False)
    return payload


def store(user_id: int, version: int, payload: str, *, record_failure: bool = True) -> None:
    """Put a fresh entry in the cache unless a newer one is there already.

    :param record_failure: after a write, remember an entry that could not be refreshed so
        it is dropped before the cache is trusted again.
    """
    try:
        _guard(lambda: _store_if_newer(settings_key(user_id), version, payload))
    except CacheUnavailable:
        if record_failure:
            record_pending(user_id)


def record_pending(user_id: int) -> None:
    """Note in the database that the cached entry of ``user_id`` may be stale."""
    with db.engine.begin() as connection:
        connection.execute(insert(PendingInvalidation).values(user_id=user_id))


def pending_count() -> int:
    """How many entries are waiting to be dropped; shown by ``/healthz``."""
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(PendingInvalidation)) or 0)


def available() -> bool:
    """Whether the breaker currently lets requests use the cache."""
    return _state().available()


def health() -> dict[str, Any]:
    """State of the cache for ``/healthz``: backend, ``ok`` or ``degraded``, pending entries."""
    client = _redis()
    backend = "redis" if client is not None else "in-process"
    status = "ok"
    try:
        if client is not None:
            _guard(client.ping)
    except CacheUnavailable:
        status = "degraded"
    if _state().outage:
        status = "degraded"
    return {"backend": backend, "status": status, "pending_invalidations": pending_count()}
