"""The settings cache: one entry per user, read-through, refreshed on write, safe in outages.

Entries are ``"<version>|<json>"`` strings under ``user_settings:<id>``; ``"<version>|~<tag>"``
is a *tombstone*: "the row is at least at this version, read it from the database", kept
without a lifetime so that no eviction policy for keys with one (``volatile-lru``) drops it.
Every store goes through one Lua script that refuses an entry older than the one held, so a
slow reader can never put back a value that a writer has replaced; a reader's store is also
refused when the trusted marker is no longer the one it read its entry under.

Redis is trusted only while the *trusted marker* is alive. Housekeeping outside requests (a
thread per process) keeps it alive: it applies the tombstones that writes recorded in
``pending_cache_invalidations`` when Redis was out of their reach, then sets the marker to
expire ``CACHE_TRUST_TTL`` after the moment, on Redis's clock, before it read those rows. A
write that could neither tombstone its entry before its commit nor refresh it afterwards
returns only once every marker set before its commit has expired. ``docs/caching.md``
explains the design and what it guarantees.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
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
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from app import database
from app.extensions import cache, db
from app.models import PendingInvalidation

log = logging.getLogger(__name__)

#: Alive while the cache may be trusted; see the module docstring. Its value is an epoch,
#: new whenever the marker had lapsed. (Releases before this one kept a marker of another
#: meaning under ``user_settings:trusted``.)
TRUSTED_KEY = "user_settings:trusted:2"

#: How many pending invalidations one reconcile step reads and applies at once.
RECONCILE_BATCH = 500

#: A write that could not reach Redis waits this much beyond ``CACHE_TRUST_TTL``: the time
#: a reconcile's marker may take from Redis's clock reading to being stored.
WRITE_MARGIN = 0.1

#: Everything a Redis client may raise when the server is away, slow or misconfigured.
#: ``RedisClusterException`` does not derive from ``RedisError``.
CACHE_ERRORS = (RedisError, RedisClusterException, OSError)

# Store ARGV[2] under KEYS[1] unless the entry there is newer, or as new and not a tombstone
# (ARGV[1] = version); ARGV[3] is the TTL in seconds, 0 for none. With KEYS[2] (the marker),
# only while it still holds ARGV[4] ("" for "absent"): a reader's copy is only as good as
# the marker it was read under.
_STORE_IF_NEWER = """
if KEYS[2] and (redis.call('GET', KEYS[2]) or '') ~= ARGV[4] then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local bar = string.find(current, '|', 1, true)
  local version = bar and tonumber(string.sub(current, 1, bar - 1))
  if version then
    local new = tonumber(ARGV[1])
    local held = string.sub(current, bar + 1, bar + 1) ~= '~'
    if version > new or (version == new and held) then return 0 end
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""

# Delete KEYS[1] if it still holds exactly ARGV[1]: a write's own tombstone after a rollback.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Redis's clock in milliseconds, read on the node that holds KEYS[1] (the marker).
_CLOCK_MS = """
local now = redis.call('TIME')
return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

# Make the marker KEYS[1] live until ARGV[1] (ms on Redis's clock) unless it already lives
# longer: a slow reconcile never shortens, or deletes, one a faster one set. A missing
# marker starts a new epoch, ARGV[2]. Returns the marker's value.
_RENEW_MARKER = """
local current = redis.call('GET', KEYS[1])
local target = tonumber(ARGV[1])
if current then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local left = redis.call('PTTL', KEYS[1])
  if left >= 0 and ms + left < target then redis.call('PEXPIREAT', KEYS[1], target) end
  return current
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', target)
return ARGV[2]
"""

Loader = Callable[[int], tuple[int, str] | None]


def settings_key(user_id: int) -> str:
    """The cache key of one user's settings entry; the only place keys are built."""
    return f"user_settings:{user_id}"


class CacheUnavailable(Exception):
    """The cache could not be reached in time, or the breaker says not to try."""


@dataclass
class CacheState:
    """Per-process health of the cache behind one app: a circuit breaker and what it saw.

    The breaker is closed (``open_until`` is ``None``) while Redis answers. A failure opens
    it for ``retry_after`` seconds; after that one operation at a time probes Redis
    (half-open) while the others keep skipping it, so a hanging server costs one timeout
    per period, not one per request.
    """

    retry_after: float
    open_until: float | None = None
    probing: bool = False
    #: When the breaker last opened: an operation begun before then says nothing of now.
    tripped_at: float = 0.0
    #: Whether housekeeping last failed to renew the trusted marker.
    untrusted: bool = False
    #: Whether housekeeping last failed to reach the database; readers then serve an
    #: untrusted entry rather than wait for a database that does not answer.
    database_down: bool = False
    #: Whether this outage of the database has been logged by the read path.
    stale_serve_logged: bool = False
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


class Housekeeper:
    """Keeps the trusted marker alive from a thread of its own, outside every request.

    Started on first use in each process (so a fork gets its own), stopped by ``shutdown``.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.ttl = float(app.config["CACHE_TRUST_TTL"])
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def ensure_running(self) -> bool:
        """Start the thread in this process if it is not running; whether it was started."""
        if self.pid == os.getpid() or self.stopping.is_set():
            return False
        with self.lock:
            if self.pid == os.getpid():
                return False
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="settings-cache", daemon=True)
            self.thread.start()
            return True

    def nudge(self) -> None:
        """Ask for a reconcile now: a reader found the marker missing."""
        self.wake.set()

    def stop(self) -> None:
        """End the thread and wait for it (tests build many apps in one process)."""
        self.stopping.set()
        self.wake.set()
        thread = self.thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _run(self) -> None:
        with self.app.app_context(), database.bounded():
            while not self.stopping.is_set():
                # Cleared before the work, so a nudge that arrives meanwhile is kept.
                self.wake.clear()
                self.tick()
                self.wake.wait(self.ttl / 5)
            db.session.remove()

    def tick(self, *, only_if_missing: bool = False) -> None:
        """Renew the marker when it is due (or only when it is gone); never raises."""
        try:
            client = _redis()
            remaining = _guard(lambda: client.pttl(_prefixed(TRUSTED_KEY)))
            due = remaining < 0 if only_if_missing else remaining < self.ttl * 600
            if due:
                reconcile(client)
        except CacheUnavailable:
            _state().untrusted = True
        except (OperationalError, InterfaceError) as exc:
            state = _state()
            if not state.database_down:
                log.warning("Cannot check pending invalidations, database unreachable: %s", exc)
            state.database_down = True
            state.untrusted = True
        except Exception:
            # A programming error (a migration not applied yet, say) is not an outage.
            log.exception("Settings cache housekeeping failed")


def init_app(app: Flask) -> None:
    """Attach the per-process cache state and housekeeping to ``app``."""
    app.extensions["settings_cache"] = CacheState(retry_after=app.config["CACHE_RETRY_AFTER"])
    app.extensions["settings_cache_housekeeper"] = Housekeeper(app)
    backend = _backend_name(app.extensions["cache"][cache])
    if app.config.get("APP_ENV") == "production" and backend == "in-process":
        # Each worker would keep its own copy: a write in one is invisible to the others.
        log.warning("No Redis configured: the settings cache is per process; run one worker.")


def shutdown(app: Flask) -> None:
    """Stop ``app``'s housekeeping thread, if one runs."""
    app.extensions["settings_cache_housekeeper"].stop()


def _state() -> CacheState:
    """The cache state of the current app."""
    state: CacheState = current_app.extensions["settings_cache"]
    return state


def _start_housekeeping() -> Housekeeper:
    """The current app's housekeeping, started in this process if it was not yet."""
    keeper: Housekeeper = current_app.extensions["settings_cache_housekeeper"]
    if keeper.ensure_running():
        # The first use in this process. Other processes keep the marker alive; only when
        # there is none at all (a new deployment) is it set here, so the cache is used from
        # the first request on.
        keeper.tick(only_if_missing=True)
    return keeper


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
        started = time.monotonic()
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
        state.succeeded(started)
        return result
    raise CacheUnavailable


def _decode(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _read_entry(client: Any, key: str) -> tuple[str | None, str | None]:
    """The raw entry of ``key`` and the trusted marker (``None``: not alive) as it was read.

    One ``MGET`` reads both at one instant. A cluster keeps them in different slots, so it
    reads the marker first: a marker seen alive was set after the tombstones it vouches for,
    which the entry, read later, then shows.
    """
    entry_key, marker_key = _prefixed(key), _prefixed(TRUSTED_KEY)
    if isinstance(client, RedisCluster):
        marker = client.get(marker_key)
        return _decode(client.get(entry_key)), _decode(marker)
    entry, marker = client.mget([entry_key, marker_key])
    return _decode(entry), _decode(marker)


def _payload(entry: str | None) -> str | None:
    """The snapshot an entry holds; ``None`` for a missing entry or a tombstone."""
    if entry is None:
        return None
    payload = entry.partition("|")[2]
    return None if not payload or payload.startswith("~") else payload


def _ttl() -> int:
    """Lifetime of a settings entry in seconds; 0 keeps it until replaced."""
    return max(int(current_app.config["SETTINGS_CACHE_TTL"]), 0)


def _store(client: Any, user_id: int, version: int, payload: str, marker: str | None = None) -> Any:
    """The version-guarded store of an entry; a payload ``~<tag>`` is a tombstone.

    :param marker: the marker a reader read the entry under (``""`` for none); its copy is
        stored only while the marker is still that one. A cluster keeps the marker in
        another slot, where one script cannot look.
    """
    entry = f"{version}|{payload}"
    key = _prefixed(settings_key(user_id))
    ttl = 0 if payload.startswith("~") else _ttl()
    if marker is None or isinstance(client, RedisCluster):
        return client.eval(_STORE_IF_NEWER, 1, key, version, entry, ttl)
    return client.eval(_STORE_IF_NEWER, 2, key, _prefixed(TRUSTED_KEY), version, entry, ttl, marker)


def _put(user_id: int, version: int, payload: str, marker: str | None = None) -> None:
    """Store an entry unless the cache holds a newer one; raises ``CacheUnavailable``."""
    client = _redis()
    if client is None:
        key = settings_key(user_id)
        with _local_lock:
            current = cache.get(key)
            if current is None or int(str(current).partition("|")[0] or 0) < version:
                cache.set(key, f"{version}|{payload}", timeout=_ttl())
        return
    _guard(lambda: _store(client, user_id, version, payload, marker))


def reconcile(client: Any) -> int:
    """Apply every pending invalidation, then renew the trusted marker.

    Reads and deletes rows in short transactions of its own, never a request's session.
    The marker expires ``CACHE_TRUST_TTL`` after Redis's clock reading taken before the
    rows were read, however long this took: a marker alive at any moment vouches for every
    pending row committed more than that long before it.

    :return: how many pending rows were applied.
    :raise CacheUnavailable: Redis failed.
    :raise SQLAlchemyError: the database failed.
    """
    state = _state()
    marker = _prefixed(TRUSTED_KEY)
    started_ms = int(_guard(lambda: client.eval(_CLOCK_MS, 1, marker)))
    applied = 0
    while True:
        with db.engine.connect() as connection:
            pending = connection.execute(
                select(
                    PendingInvalidation.id, PendingInvalidation.user_id, PendingInvalidation.version
                )
                .order_by(PendingInvalidation.id)
                .limit(RECONCILE_BATCH)
            ).all()
        for row in pending:
            if row.version is None:
                _guard(functools.partial(client.delete, _prefixed(settings_key(row.user_id))))
            else:
                tombstone = f"~p{row.id}"
                _guard(functools.partial(_store, client, row.user_id, row.version, tombstone))
        if pending:
            # Exactly the rows read: a smaller id may still commit after this read.
            with db.engine.begin() as connection:
                ids = [row.id for row in pending]
                connection.execute(
                    delete(PendingInvalidation).where(PendingInvalidation.id.in_(ids))
                )
        applied += len(pending)
        if len(pending) < RECONCILE_BATCH:
            break
    expires_ms = started_ms + int(current_app.config["CACHE_TRUST_TTL"] * 1000)
    epoch = secrets.token_hex(8)
    _guard(lambda: client.eval(_RENEW_MARKER, 1, marker, expires_ms, epoch))
    if state.untrusted or state.database_down:
        log.info("Settings cache trusted again; %d pending entries applied", applied)
    state.untrusted = False
    state.database_down = False
    state.stale_serve_logged = False
    return applied


def read_through(user_id: int, load: Loader) -> str | None:
    """Return the cached payload for ``user_id``, loading and caching it on a miss.

    Never raises a cache error: when Redis is unavailable or not trusted the payload comes
    from ``load``. An untrusted entry is served only when the database cannot be reached.

    :param load: reads ``(version, payload)`` from the database, or ``None`` if no such user.
    """
    client = _redis()
    if client is None:
        entry = cache.get(settings_key(user_id))
        payload = _payload(None if entry is None else str(entry))
        if payload is not None:
            return payload
        return _load_and_put(user_id, load)
    keeper = _start_housekeeping()
    try:
        entry, marker = _guard(lambda: _read_entry(client, settings_key(user_id)))
    except CacheUnavailable:
        loaded = load(user_id)
        return loaded[1] if loaded else None
    payload = _payload(entry)
    state = _state()
    if payload is not None and (marker is not None or state.database_down):
        return payload
    if marker is None:
        keeper.nudge()
    try:
        loaded_payload = _load_and_put(user_id, load, marker or "")
    except DBAPIError:
        if payload is None:
            raise
        if not state.stale_serve_logged:
            state.stale_serve_logged = True
            log.warning("Database unreachable: serving cached settings that are not confirmed")
        return payload
    state.database_down = False
    return loaded_payload


def _load_and_put(user_id: int, load: Loader, marker: str | None = None) -> str | None:
    """Read a user's entry from the database and cache it (best effort).

    :param marker: the trusted marker as read with the entry (``""``: none), see ``_store``.
    """
    loaded = load(user_id)
    if loaded is None:
        return None
    version, payload = loaded
    # A reader has nothing to record when this fails: the entry it could not fill is not stale.
    with contextlib.suppress(CacheUnavailable):
        _put(user_id, version, payload, marker)
    return payload


@dataclass
class PendingWrite:
    """A write between its ``UPDATE`` and its commit, as the cache sees it.

    ``begin_write`` makes the old entry unservable before the commit: a tombstone in Redis,
    or, when Redis is out of reach, a pending row in the write's own transaction. So no
    crash after the commit can leave the old entry to be served.
    """

    user_id: int
    version: int
    #: The exact tombstone this write placed, so that only it is taken back.
    tombstone: str | None = None
    recorded: bool = False

    def committed(self, payload: str) -> None:
        """After the commit: store the new entry; if Redis is still away, wait it out."""
        committed_at = time.monotonic()
        client = _redis()
        try:
            _put(self.user_id, self.version, payload)
        except CacheUnavailable:
            if client is not None and self.tombstone is None:
                # Other processes may still trust the old entry: wait until every marker
                # set before the commit has expired, so none is alive when this returns.
                ttl = float(current_app.config["CACHE_TRUST_TTL"])
                remaining = committed_at + ttl + WRITE_MARGIN - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)

    def abandoned(self) -> None:
        """Before a rollback: take back the tombstone, so readers keep the cached entry.

        Only for a write that never sent its commit: after a commit that failed or timed
        out the row may well have been written, and the tombstone must stay.
        """
        client = _redis()
        tombstone = self.tombstone
        if client is None or tombstone is None:
            return
        key = _prefixed(settings_key(self.user_id))
        with contextlib.suppress(CacheUnavailable):
            _guard(lambda: client.eval(_DELETE_IF_EQUAL, 1, key, tombstone))


def begin_write(user_id: int, version: int) -> PendingWrite:
    """In a write's open transaction (``db.session``), before its commit; see ``PendingWrite``."""
    pending = PendingWrite(user_id, version)
    client = _redis()
    if client is None:
        return pending
    tag = f"~{secrets.token_hex(6)}"
    try:
        _guard(lambda: _store(client, user_id, version, tag))
        pending.tombstone = f"{version}|{tag}"
    except CacheUnavailable:
        db.session.execute(insert(PendingInvalidation).values(user_id=user_id, version=version))
        pending.recorded = True
    return pending


def invalidate(user_id: int) -> None:
    """Drop a user's entry, or record it as pending when the cache cannot be reached."""
    client = _redis()
    if client is None:
        cache.delete(settings_key(user_id))
        return
    try:
        _guard(lambda: client.delete(_prefixed(settings_key(user_id))))
    except CacheUnavailable:
        with db.engine.begin() as connection:
            connection.execute(insert(PendingInvalidation).values(user_id=user_id))


def pending_count() -> int:
    """How many entries are waiting to be dropped; shown by ``/healthz``."""
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(PendingInvalidation)) or 0)


def available() -> bool:
    """Whether the breaker currently lets requests use the cache."""
    return _state().available()


def health(*, count_pending: bool = True) -> dict[str, Any]:
    """State of the cache for ``/healthz``: backend, ``ok`` or ``degraded``, pending entries.

    ``ok`` needs Redis to answer and the trusted marker to be alive: only then do warm reads
    come from the cache.

    :param count_pending: ask the database how many invalidations wait (``None`` if not).
    """
    state = _state()
    client = _redis()
    body: dict[str, Any] = {"backend": _backend_name(cache.cache)}
    status = "ok"
    if client is not None:
        _start_housekeeping()
        try:
            if _guard(lambda: client.pttl(_prefixed(TRUSTED_KEY))) <= 0:
                status = "degraded"
        except CacheUnavailable:
            status = "degraded"
        body["breaker"] = "closed" if state.open_until is None else "open"
    body["status"] = status
    body["pending_invalidations"] = None
    if count_pending:
        with contextlib.suppress(SQLAlchemyError):
            body["pending_invalidations"] = pending_count()
    return body
