"""Where entries live: Redis (one server, Sentinel or Cluster), or this process's memory.

Both backends answer the same questions; every Redis call goes through the breaker, so a
Redis error reaches the caller as ``CacheUnavailable`` and nothing else.

Entries are ``"<version>|<json>"``; ``"<version>|~<tag>"`` is a *tombstone*: "the row is at
least at this version, read it from the database", kept without a lifetime so that no
eviction policy for keys with one (``volatile-lru``) drops it. Every store goes through one
Lua script that refuses an entry older than the one held, so a slow reader can never put
back a value that a writer has replaced; a reader's store is also refused when the trusted
marker is no longer the one it read its entry under.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import redis
from flask import Flask
from flask_caching import Cache
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from app.config import redis_cache_options
from app.counters import COUNT, COUNT_IN_WINDOWS, Window, arguments
from app.preferences.cache.breaker import Breaker
from app.preferences.cache.keys import TRUSTED_KEY, settings_key

# store_if_newer(key, version, entry, ttl): store ``entry`` under ``key`` unless the entry
# there is newer, or as new and not a tombstone; ``ttl`` in seconds, 0 for none. 1 if stored.
STORE_IF_NEWER_FUNCTION = """
local function store_if_newer(key, version, entry, ttl)
  local current = redis.call('GET', key)
  if current then
    local bar = string.find(current, '|', 1, true)
    local held_version = bar and tonumber(string.sub(current, 1, bar - 1))
    if held_version then
      local new = tonumber(version)
      local held = string.sub(current, bar + 1, bar + 1) ~= '~'
      if held_version > new or (held_version == new and held) then return 0 end
    end
  end
  if tonumber(ttl) > 0 then
    redis.call('SET', key, entry, 'EX', ttl)
  else
    redis.call('SET', key, entry)
  end
  return 1
end
"""

# ARGV[1] = version, ARGV[2] the entry, ARGV[3] its TTL. With KEYS[2] (the marker), only
# while it still holds ARGV[4] ("" for "absent"): a reader's copy is only as good as the
# marker it was read under.
STORE_IF_NEWER = (
    STORE_IF_NEWER_FUNCTION
    + """
if KEYS[2] and (redis.call('GET', KEYS[2]) or '') ~= ARGV[4] then return 0 end
return store_if_newer(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
"""
)

# A write's tombstone ARGV[2] (version ARGV[1]) under KEYS[1], counted first in the user's
# write budget: KEYS[2..] its windows, ARGV[3..] their limits and ends (app.counters).
# Returns the seconds to wait, negated, when the budget is spent: then nothing is placed.
TOMBSTONE_WITHIN_BUDGET = (
    COUNT_IN_WINDOWS
    + STORE_IF_NEWER_FUNCTION
    + """
local wait = count_in_windows(2, #KEYS - 1, 3)
if wait > 0 then return -wait end
return store_if_newer(KEYS[1], ARGV[1], ARGV[2], 0)
"""
)

# Delete KEYS[1] if it still holds exactly ARGV[1]: a write's own tombstone after a rollback.
DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Redis's clock in milliseconds, read on the node that holds KEYS[1] (the marker).
CLOCK_MS = """
local now = redis.call('TIME')
return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

# Make the marker KEYS[1] live until ARGV[1] (ms on Redis's clock) unless it already lives
# longer: a slow reconcile never shortens, or deletes, one a faster one set. A missing
# marker starts a new epoch, ARGV[2]. Returns the marker's value.
RENEW_MARKER = """
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

#: What a local backend reports as the marker: memory is trusted, nothing can bypass it.
LOCAL_MARKER = "local"


def payload_of(entry: str | None) -> str | None:
    """The snapshot an entry holds; ``None`` for a missing entry or a tombstone."""
    if entry is None:
        return None
    payload = entry.partition("|")[2]
    return None if not payload or payload.startswith("~") else payload


class Backend(Protocol):
    """What the cache needs of wherever its entries live."""

    name: str
    breaker: Breaker

    def read(self, user_id: int) -> tuple[str | None, str | None]:
        """The raw entry and the trusted marker (``None``: not alive) as they were read."""

    def store(self, user_id: int, version: int, payload: str, marker: str | None = None) -> Any:
        """The version-guarded store of an entry; a payload ``~<tag>`` is a tombstone."""

    def delete(self, user_id: int, *, only_if: str | None = None) -> Any:
        """Drop an entry (only while it still holds ``only_if``, when given)."""


class LocalBackend:
    """Flask-Caching's in-process store: right for one process, and for ``flask run``."""

    name = "in-process"

    def __init__(self, cache: Cache, ttl: int, retry_after: float) -> None:
        self.cache = cache
        self.ttl = ttl
        self.breaker = Breaker(retry_after=retry_after)
        self.lock = threading.Lock()

    def read(self, user_id: int) -> tuple[str | None, str | None]:
        """The entry as stored here; this memory is always trusted."""
        entry = self.cache.get(settings_key(user_id))
        return (None if entry is None else str(entry)), LOCAL_MARKER

    def store(self, user_id: int, version: int, payload: str, marker: str | None = None) -> bool:
        """Store unless a newer entry is held (the lock makes the check and the set one step)."""
        key = settings_key(user_id)
        with self.lock:
            current = self.cache.get(key)
            if current is not None and int(str(current).partition("|")[0] or 0) >= version:
                return False
            self.cache.set(key, f"{version}|{payload}", timeout=self.ttl)
        return True

    def delete(self, user_id: int, *, only_if: str | None = None) -> bool:
        """Drop an entry."""
        return bool(self.cache.delete(settings_key(user_id)))


class RedisBackend:
    """A Redis every process shares, reached through the breaker with short timeouts."""

    def __init__(self, client: Any, name: str, prefix: str, ttl: int, retry_after: float) -> None:
        self.client = client
        # EVALSHA: each call sends the script's digest, not its text.
        self.store_if_newer = client.register_script(STORE_IF_NEWER)
        self.tombstone_within_budget = client.register_script(TOMBSTONE_WITHIN_BUDGET)
        # The budget's windows alone: a cluster keeps them in another slot than the entry.
        self.count = client.register_script(COUNT)
        self.delete_if_equal = client.register_script(DELETE_IF_EQUAL)
        self.clock = client.register_script(CLOCK_MS)
        self.renew = client.register_script(RENEW_MARKER)
        self.name = name
        self.prefix = prefix
        self.ttl = ttl
        self.breaker = Breaker(retry_after=retry_after)
        #: A cluster keeps the marker in another slot than the entries: no script sees both.
        self.cluster = isinstance(client, RedisCluster)

    def key(self, name: str) -> str:
        """``name`` as stored: after ``CACHE_KEY_PREFIX``, as Flask-Caching stores its keys."""
        return self.prefix + name

    def read(self, user_id: int) -> tuple[str | None, str | None]:
        """Entry and marker at one instant (one ``MGET``).

        A cluster reads the marker first: a marker seen alive was set after the tombstones
        it vouches for, which the entry, read later, then shows.
        """
        entry_key, marker_key = self.key(settings_key(user_id)), self.key(TRUSTED_KEY)
        if self.cluster:
            marker = self.breaker.call(lambda: self.client.get(marker_key))
            entry = self.breaker.call(lambda: self.client.get(entry_key))
            return _text(entry), _text(marker)
        entry, marker = self.breaker.call(lambda: self._mget(entry_key, marker_key))
        return _text(entry), _text(marker)

    def _mget(self, *keys: str) -> list[Any]:
        """``MGET`` on one of the client's pooled connections.

        Every signed-in request starts with this read. Through the client, its retry
        wrapper (with no retries configured) and metrics hooks (with no collector) took as
        much of the process's time as the command itself; a connection that fails is closed
        by redis-py either way, and its errors are the same.
        """
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command("MGET", *keys)
            return list(connection.read_response())
        finally:
            pool.release(connection)

    def store(self, user_id: int, version: int, payload: str, marker: str | None = None) -> Any:
        """The version-guarded store; ``marker`` (a reader's) must still be the one it read."""
        entry = f"{version}|{payload}"
        key = self.key(settings_key(user_id))
        ttl = 0 if payload.startswith("~") else self.ttl
        if marker is None or self.cluster:
            return self.breaker.call(
                lambda: self.store_if_newer(keys=[key], args=[version, entry, ttl])
            )
        marker_key = self.key(TRUSTED_KEY)
        return self.breaker.call(
            lambda: self.store_if_newer(keys=[key, marker_key], args=[version, entry, ttl, marker])
        )

    def place_tombstone(self, user_id: int, version: int, tag: str, counted: list[Window]) -> int:
        """Store the tombstone ``tag``, the write counted first in ``counted`` (if any).

        The windows' keys are used as they are named (``budget.to_charge``).

        Returns 0, or the seconds to wait when a window is full: then nothing is placed.
        """
        key = self.key(settings_key(user_id))
        entry = f"{version}|{tag}"
        if not self.cluster:
            keys, limits = arguments(counted)
            placed = self.breaker.call(
                lambda: self.tombstone_within_budget(
                    keys=[key, *keys], args=[version, entry, *limits]
                )
            )
            return max(0, -int(placed))
        wait = self.count_in(counted)
        if not wait:
            self.breaker.call(lambda: self.store_if_newer(keys=[key], args=[version, entry, 0]))
        return wait

    def count_in(self, counted: list[Window]) -> int:
        """Count one write in ``counted``: 0, or the seconds to wait when a window is full."""
        if not counted:
            return 0
        keys, limits = arguments(counted)
        return int(self.breaker.call(lambda: self.count(keys=keys, args=limits)))

    def delete(self, user_id: int, *, only_if: str | None = None) -> Any:
        """Drop an entry (only while it still holds ``only_if``, when given)."""
        key = self.key(settings_key(user_id))
        if only_if is None:
            return self.breaker.call(lambda: self.client.delete(key))
        return self.breaker.call(lambda: self.delete_if_equal(keys=[key], args=[only_if]))

    def marker_ttl_ms(self) -> int:
        """What is left of the trusted marker's life, in ms (negative: there is none)."""
        return int(self.breaker.call(lambda: self.client.pttl(self.key(TRUSTED_KEY))))

    def clock_ms(self) -> int:
        """Redis's clock, on the node holding the marker."""
        return int(self.breaker.call(lambda: self.clock(keys=[self.key(TRUSTED_KEY)])))

    def renew_marker(self, expires_ms: int, epoch: str) -> Any:
        """Make the marker live until ``expires_ms`` unless it lives longer; see RENEW_MARKER."""
        marker_key = self.key(TRUSTED_KEY)
        return self.breaker.call(lambda: self.renew(keys=[marker_key], args=[expires_ms, epoch]))


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def redis_client(config: dict[str, Any]) -> tuple[Any, str] | None:
    """A redis-py client of the configured Redis, and the backend's name; ``None`` for none.

    Built here, from the same settings Flask-Caching reads, with public redis-py APIs: the
    cache runs Lua scripts, which Flask-Caching's backends do not offer. Sentinel is asked
    for the master, never a replica, which may lag behind writes that have returned.
    """
    cache_type = str(config.get("CACHE_TYPE") or "")
    timeout = float(config["CACHE_SOCKET_TIMEOUT"])
    options = redis_cache_options(timeout, cache_type)
    password = config.get("CACHE_REDIS_PASSWORD")
    if cache_type == "RedisCache":
        return redis.Redis.from_url(str(config["CACHE_REDIS_URL"]), **options), "redis"
    if cache_type == "RedisSentinelCache":
        sentinel_options = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "password": config.get("CACHE_REDIS_SENTINEL_PASSWORD"),
        }
        sentinel = Sentinel(config["CACHE_REDIS_SENTINELS"], sentinel_kwargs=sentinel_options)
        master = config["CACHE_REDIS_SENTINEL_MASTER"]
        plain = {k: v for k, v in options.items() if not k.startswith("sentinel_")}
        return sentinel.master_for(master, password=password, **plain), "redis-sentinel"
    if cache_type == "RedisClusterCache":
        nodes = str(
            config.get("CACHE_REDIS_CLUSTER") or config["CACHE_REDIS_URL"].partition("://")[2]
        )
        startup = [ClusterNode(*_host_port(node)) for node in nodes.split(",") if node.strip()]
        return RedisCluster(startup_nodes=startup, password=password, **options), "redis-cluster"
    return None


def _host_port(node: str) -> tuple[str, int]:
    host, _, port = node.strip().rpartition(":")
    return host, int(port)


def build(app: Flask, cache: Cache) -> RedisBackend | LocalBackend:
    """The backend ``app`` is configured for."""
    config = app.config
    ttl = max(int(config["SETTINGS_CACHE_TTL"]), 0)
    retry_after = float(config["CACHE_RETRY_AFTER"])
    found = redis_client(config)
    if found is None:
        return LocalBackend(cache, ttl, retry_after)
    client, name = found
    prefix = str(config.get("CACHE_KEY_PREFIX") or "")
    return RedisBackend(client, name, prefix, ttl, retry_after)
