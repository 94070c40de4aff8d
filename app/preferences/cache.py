"""The settings cache: one entry per user, read-through, refreshed on write, safe in outages.

Entries are ``"<version>|<json>"`` strings under ``user_settings:<id>``. Every write stores the
new entry only if the cached one is older (a Lua script on Redis), so a slow reader can never
put back a value that a writer has already replaced. Redis errors never reach a view: a
circuit breaker skips the cache for a while after a failure, and a write that could not
refresh the cache is recorded in ``pending_cache_invalidations`` and applied before the cache
is trusted again. ``docs/caching.md`` explains the design and what it guarantees.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_caching.backends.rediscache import RedisCache
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.extensions import cache, db
from app.models import PendingInvalidation

log = logging.getLogger(__name__)

#: Present while the cache may be trusted without looking at pending invalidations; it
#: never outlives ``CACHE_TRUST_TTL`` seconds after the reconcile that set it read them.
TRUSTED_KEY = "user_settings:trusted"

#: How many pending invalidations one reconcile step reads and applies at once.
RECONCILE_BATCH = 500

#: Everything a Redis client may raise when the server is away, slow or misconfigured.
#: ``RedisClusterException`` does not derive from ``RedisError``.
CACHE_ERRORS = (RedisError, RedisClusterException, OSError)

# Store ARGV[2] under KEYS[1] unless the entry there is as new or newer (ARGV[1] = version);
# ARGV[3] is the TTL in seconds, 0 for none.
_STORE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""

Loader = Callable[[int], tuple[int, str] | None]


def settings_key(user_id: int) -> str:
    """The cache key of one user's settings entry; the only place keys are built."""
    return f"user_settings:{user_id}"


class CacheUnavailable(Exception):
    """The cache could not be reached in time, or the breaker says not to try."""


@dataclass
class CacheState:
    """Per-process health of the cache behind one app: a circuit breaker plus outage flag.

    The breaker is closed (``open_until`` is ``None``) while Redis answers. A failure opens
    it for ``retry_after`` seconds; after that one request at a time probes Redis (half-open)
    while the others keep skipping it, so a hanging server costs one timeout per period, not
    one per request.
    """

    retry_after: float
    open_until: float | None = None
    probing: bool = False
    #: Set by a failure or a recorded pending invalidation; cleared by a clean reconcile.
    outage: bool = False
    #: Bumped with every failure and pending record, so a reconcile that overlapped one
    #: does not clear ``outage``.
    epoch: int = 0
    #: Whether this worker has said that the periodic reconcile cannot reach the database.
    database_down_logged: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def available(self) -> bool:
        """Whether the breaker would let a request try the cache now (no side effects)."""
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

    def succeeded(self) -> None:
        """An operation worked: close the breaker."""
        if self.open_until is not None or self.probing:
            with self.lock:
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
            self.open_until = time.monotonic() + self.retry_after
            self.probing = False
            self.epoch += 1
            if not self.outage:
                self.outage = True
                log.warning(
                    "Settings cache unreachable, serving from the database: %s: %s",
                    type(exc).__name__,
                    exc,
                )

    def mark_stale(self) -> None:
        """A pending invalidation was committed: reconcile before trusting the cache again."""
        with self.lock:
            self.epoch += 1
            self.outage = True

    def recovered(self, epoch: int, dropped: int) -> None:
        """A reconcile begun at ``epoch`` finished: trust the cache unless it failed since."""
        with self.lock:
            if self.outage and self.epoch == epoch:
                self.outage = False
                log.info("Settings cache trusted again; %d pending entries dropped", dropped)


def init_app(app: Flask) -> None:
    """Attach the per-process cache state to ``app``."""
    app.extensions["settings_cache"] = CacheState(retry_after=app.config["CACHE_RETRY_AFTER"])
    backend = _backend_name(app.extensions["cache"][cache])
    if app.config.get("APP_ENV") == "production" and backend == "in-process":
        # Each worker would keep its own copy: a write in one is invisible to the others.
        log.warning("No Redis configured: the settings cache is per process; run one worker.")


def _state() -> CacheState:
    """The cache state of the current app."""
    state: CacheState = current_app.extensions["settings_cache"]
    return state


def _prefixed(key: str) -> str:
    """The key as Flask-Caching's Redis backends store it (``CACHE_KEY_PREFIX`` first)."""
    return str(current_app.config.get("CACHE_KEY_PREFIX") or "") + key


def _redis() -> Any:
    """The redis-py client that writes for Flask-Caching, or ``None`` for an in-process cache.

    The Sentinel backend reads from a replica, which may lag; we read and write through the
    master client so a read sees every write that returned. The Cluster backend's client is
    a ``RedisCluster``.
    """
    backend = cache.cache
    if isinstance(backend, RedisCache):
        return backend._write_client
    return None


def _backend_name(backend: Any) -> str:
    """A short name of a Flask-Caching backend for ``/healthz`` and logs."""
    if not isinstance(backend, RedisCache):
        return "in-process"
    return {
        "RedisSentinelCache": "redis-sentinel",
        "RedisClusterCache": "redis-cluster",
    }.get(type(backend).__name__, "redis")


_local_lock = threading.Lock()


def _guard(operation: Callable[[], Any], *, attempts: int = 1) -> Any:
    """Run one Redis operation; a failure trips the breaker and becomes ``CacheUnavailable``.

    :param attempts: tries before giving up; more than one only where a failure costs more
        than a timeout (a write that cannot refresh its entry).
    """
    state = _state()
    if not state.acquire():
        raise CacheUnavailable
    for attempt in range(attempts):
        try:
            result = operation()
        except CACHE_ERRORS as exc:
            if attempt + 1 < attempts:
                continue
            state.trip(exc)
            raise CacheUnavailable from exc
        except BaseException:
            state.release()
            raise
        state.succeeded()
        return result
    raise CacheUnavailable


def _get_many(client: Any, *keys: str) -> list[str | None]:
    """Read several keys in one round trip."""
    prefixed = [_prefixed(key) for key in keys]
    # A cluster refuses a multi-key MGET across hash slots; this splits it per slot.
    if isinstance(client, RedisCluster):
        values = client.mget_nonatomic(prefixed)
    else:
        values = client.mget(prefixed)
    return [value.decode() if isinstance(value, bytes) else value for value in values]


def _ttl() -> int:
    """Lifetime of a settings entry in seconds; 0 keeps it until replaced."""
    return max(int(current_app.config["SETTINGS_CACHE_TTL"]), 0)


def _put(user_id: int, version: int, payload: str, *, attempts: int = 1) -> None:
    """Store an entry unless the cache holds one as new or newer; raises ``CacheUnavailable``."""
    key = settings_key(user_id)
    entry = f"{version}|{payload}"
    client = _redis()
    if client is None:
        with _local_lock:
            current = cache.get(key)
            if current is None or int(str(current).partition("|")[0] or 0) < version:
                cache.set(key, entry, timeout=_ttl())
        return
    _guard(
        lambda: client.eval(_STORE_IF_NEWER, 1, _prefixed(key), version, entry, _ttl()),
        attempts=attempts,
    )


def _reconcile(client: Any) -> set[int]:
    """Drop the entries that writes could not refresh while the cache was away, then trust it.

    Reads and deletes rows in short transactions of its own, never the request's session.
    The trusted marker expires ``CACHE_TRUST_TTL`` seconds after the pending rows were read,
    however long this took, so a row committed after that read is applied by the next
    reconcile at the latest that long afterwards.

    :return: the users whose entries were dropped.
    :raise CacheUnavailable: Redis failed, or the breaker is open (then without any SQL).
    """
    state = _state()
    if not state.available():
        raise CacheUnavailable
    epoch = state.epoch
    started = time.monotonic()
    dropped: set[int] = set()
    rows = 0
    while True:
        with db.engine.connect() as connection:
            pending = connection.execute(
                select(PendingInvalidation.id, PendingInvalidation.user_id)
                .order_by(PendingInvalidation.id)
                .limit(RECONCILE_BATCH)
            ).all()
        if not pending:
            break
        users = {row.user_id for row in pending}
        _guard(functools.partial(client.delete, *[_prefixed(settings_key(u)) for u in users]))
        # Exactly the rows read: a smaller id may still commit after this read.
        with db.engine.begin() as connection:
            ids = [row.id for row in pending]
            connection.execute(delete(PendingInvalidation).where(PendingInvalidation.id.in_(ids)))
        dropped |= users
        rows += len(pending)
        if len(pending) < RECONCILE_BATCH:
            break
    budget_ms = int(current_app.config["CACHE_TRUST_TTL"] * 1000)
    remaining_ms = budget_ms - int((time.monotonic() - started) * 1000)
    if remaining_ms > 0:
        marker = _prefixed(TRUSTED_KEY)
        _guard(lambda: client.set(marker, b"1", px=remaining_ms))
    state.recovered(epoch, rows)
    return dropped


def _reconcile_if_reachable(client: Any) -> set[int]:
    """The periodic reconcile, skipped while the database is down.

    It only guards against a failure that another worker saw; with the database down no
    write can happen either, and warm reads must keep answering, so the entry is served.
    """
    state = _state()
    try:
        dropped = _reconcile(client)
    except DBAPIError as exc:
        if not state.database_down_logged:
            state.database_down_logged = True
            log.warning("Cannot check pending invalidations, database unreachable: %s", exc.orig)
        return set()
    state.database_down_logged = False
    return dropped


def read_through(user_id: int, load: Loader) -> str | None:
    """Return the cached payload for ``user_id``, loading and caching it on a miss.

    Never raises a cache error: when Redis is unavailable the payload comes from ``load``.

    :param load: reads ``(version, payload)`` from the database, or ``None`` if no such user.
    """
    key = settings_key(user_id)
    client = _redis()
    if client is None:
        entry = cache.get(key)
        if entry is not None:
            return str(entry).partition("|")[2]
    else:
        try:
            if _state().outage:
                _reconcile(client)
            entry, trusted = _guard(lambda: _get_many(client, key, TRUSTED_KEY))
            # The entry was read before the reconcile; only usable if it dropped nothing of it.
            if trusted is None and user_id in _reconcile_if_reachable(client):
                entry = None
            if entry is not None:
                return str(entry).partition("|")[2]
        except CacheUnavailable:
            loaded = load(user_id)
            return loaded[1] if loaded else None
    loaded = load(user_id)
    if loaded is None:
        return None
    version, payload = loaded
    # A reader has nothing to record when this fails: the entry it could not fill is not stale.
    with contextlib.suppress(CacheUnavailable):
        _put(user_id, version, payload)
    return payload


def record_pending_in(user_id: int) -> bool:
    """In a write's open transaction (``db.session``): if the cache is down, record the entry.

    Recording in the write's own transaction means no crash between commit and cache
    refresh can lose it. Pass the result to ``store`` after the commit.

    :return: whether a pending invalidation was added to the transaction.
    """
    if _redis() is None or _state().available():
        return False
    db.session.execute(insert(PendingInvalidation).values(user_id=user_id))
    return True


def store(user_id: int, version: int, payload: str, *, recorded: bool = False) -> None:
    """After a write's commit: put its entry in the cache, or record that the old one is stale.

    :param recorded: the write's transaction already recorded a pending invalidation
        (``record_pending_in``).
    """
    if recorded:
        _state().mark_stale()
    try:
        # A second try on a fresh connection: a blip that fails this write would let other
        # workers serve the old entry for up to CACHE_TRUST_TTL.
        _put(user_id, version, payload, attempts=2)
    except CacheUnavailable:
        if not recorded:
            record_pending(user_id)


def invalidate(user_id: int) -> None:
    """Drop a user's entry, or record it as pending when the cache cannot be reached."""
    client = _redis()
    if client is None:
        cache.delete(settings_key(user_id))
        return
    try:
        _guard(lambda: client.delete(_prefixed(settings_key(user_id))))
    except CacheUnavailable:
        record_pending(user_id)


def record_pending(user_id: int) -> None:
    """Note in the database that the cached entry of ``user_id`` may be stale."""
    with db.engine.begin() as connection:
        connection.execute(insert(PendingInvalidation).values(user_id=user_id))
    _state().mark_stale()


def pending_count() -> int:
    """How many entries are waiting to be dropped; shown by ``/healthz``."""
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(PendingInvalidation)) or 0)


def available() -> bool:
    """Whether the breaker currently lets requests use the cache."""
    return _state().available()


def health() -> dict[str, Any]:
    """State of the cache for ``/healthz``: backend, ``ok`` or ``degraded``, pending entries.

    Pings Redis (unless the breaker is open) and, after an outage, reconciles, so a worker
    that serves only health checks still notices when Redis is back.
    """
    state = _state()
    client = _redis()
    body: dict[str, Any] = {"backend": _backend_name(cache.cache)}
    status = "ok"
    if client is not None:
        try:
            _guard(client.ping)
            if state.outage:
                _reconcile(client)
        except CacheUnavailable:
            status = "degraded"
        except SQLAlchemyError:
            # The database check reports that; the cache stays untrusted until it is back.
            pass
        body["breaker"] = "closed" if state.open_until is None else "open"
    if state.outage:
        status = "degraded"
    body["status"] = status
    try:
        body["pending_invalidations"] = pending_count()
    except SQLAlchemyError:
        body["pending_invalidations"] = None
    return body
