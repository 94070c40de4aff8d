"""The settings cache as the rest of the app uses it: read through, write around, report.

One entry per user (``backend``). A read trusts a Redis entry only while the trusted marker
(``housekeeping``) is alive. A write makes the old entry unservable before its commit (a
tombstone, or a pending row in its transaction when Redis is out of reach) and stores the
new one after it; one that reached Redis at neither point waits out every marker set before
its commit. ``docs/caching.md`` explains the design and what it guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.counters import Window
from app.extensions import cache
from app.preferences import budget
from app.preferences.cache import backend, outbox
from app.preferences.cache.backend import LocalBackend, RedisBackend, payload_of
from app.preferences.cache.breaker import CacheUnavailable
from app.preferences.cache.housekeeping import Housekeeper, Trust

log = logging.getLogger("app.preferences.cache")

#: A write that could not reach Redis waits this much beyond ``CACHE_TRUST_TTL``: the time
#: a reconcile's marker may take from Redis's clock reading to being stored.
WRITE_MARGIN = 0.1

#: Reads ``(version, payload)`` of a user from the database, or ``None`` for no such user.
Loader = Callable[[int], tuple[int, str] | None]


@dataclass
class SettingsCache:
    """One app's cache: its backend, and for Redis what keeps it trustworthy."""

    backend: RedisBackend | LocalBackend
    trust: Trust
    housekeeper: Housekeeper | None


def init_app(app: Flask) -> None:
    """Attach the settings cache to ``app`` (after Flask-Caching's ``cache.init_app``)."""
    found = backend.build(app, cache)
    trust = Trust()
    keeper = Housekeeper(app, found, trust) if isinstance(found, RedisBackend) else None
    app.extensions["settings_cache"] = SettingsCache(found, trust, keeper)
    if app.config.get("APP_ENV") == "production" and keeper is None:
        # Each worker would keep its own copy: a write in one is invisible to the others.
        log.warning("No Redis configured: the settings cache is per process; run one worker.")


def shutdown(app: Flask) -> None:
    """Stop ``app``'s housekeeping thread, if one runs."""
    keeper = app.extensions["settings_cache"].housekeeper
    if keeper is not None:
        keeper.stop()


def current() -> SettingsCache:
    """The settings cache of the current app, its housekeeping started in this process.

    The first use in a process starts it. Other processes keep the marker alive; only when
    there is none at all (a new deployment) is it set here, so the cache is used from the
    first request on.
    """
    settings_cache: SettingsCache = current_app.extensions["settings_cache"]
    keeper = settings_cache.housekeeper
    if keeper is not None and keeper.ensure_running():
        keeper.tick(only_if_missing=True)
    return settings_cache


def read_through(user_id: int, load: Loader) -> str | None:
    """The cached payload for ``user_id``, loaded (and cached) on a miss; never a cache error.

    An entry is used while the marker vouches for it; without the marker it is used only
    when the database cannot be reached, as the lesser evil to an error.
    """
    settings_cache = current()
    try:
        entry, marker = settings_cache.backend.read(user_id)
    except CacheUnavailable:
        loaded = load(user_id)
        return loaded[1] if loaded else None
    payload, trust = payload_of(entry), settings_cache.trust
    if payload is not None and (marker is not None or trust.database_down):
        return payload
    if marker is None and settings_cache.housekeeper is not None:
        settings_cache.housekeeper.nudge()
    try:
        loaded_payload = _load_and_put(settings_cache, user_id, load, marker or "")
    except DBAPIError:
        if payload is None:
            raise
        if not trust.stale_serve_logged:
            trust.stale_serve_logged = True
            log.warning("Database unreachable: serving cached settings that are not confirmed")
        return payload
    trust.database_down = False
    return loaded_payload


def _load_and_put(
    settings_cache: SettingsCache, user_id: int, load: Loader, marker: str
) -> str | None:
    """Read a user's entry from the database and cache it, under the marker it was read with."""
    loaded = load(user_id)
    if loaded is None:
        return None
    version, payload = loaded
    # A reader has nothing to record when this fails: the entry it could not fill is not stale.
    with contextlib.suppress(CacheUnavailable):
        settings_cache.backend.store(user_id, version, payload, marker)
    return payload


@dataclass
class PendingWrite:
    """A write between its ``UPDATE`` and its commit, as the cache sees it."""

    user_id: int
    version: int
    #: The exact tombstone this write placed, so that only it is taken back.
    tombstone: str | None = None

    def committed(self, payload: str) -> None:
        """After the commit: store the new entry; if Redis is still away, wait it out."""
        committed_at = time.monotonic()
        settings_cache = current()
        try:
            settings_cache.backend.store(self.user_id, self.version, payload)
        except CacheUnavailable:
            if self.tombstone is None:
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
        if self.tombstone is None:
            return
        tombstone = self.tombstone
        with contextlib.suppress(CacheUnavailable):
            current().backend.delete(self.user_id, only_if=tombstone)


def begin_write(user_id: int, version: int) -> PendingWrite:
    """In a write's open transaction (``db.session``), before its commit; see ``PendingWrite``.

    Makes the old entry unservable before the commit: a tombstone in Redis, or, when Redis
    is out of reach, a pending row in the write's own transaction. So no crash after the
    commit can leave the old entry to be served.
    """
    pending = PendingWrite(user_id, version)
    if not _place_tombstone(pending):
        budget.charge_in_memory(_to_charge(user_id))
        outbox.record_in_transaction(user_id, version)
    return pending


def tombstone_first(user_id: int, version: int) -> PendingWrite | None:
    """Before a write that commits in a single statement: make the old entry unservable.

    ``None`` when Redis cannot be reached; such a write must take the transactional way
    (``begin_write``), which records a pending row in its transaction instead. A tombstone
    placed here is never taken back: whether or not the statement then matched, it only
    sends readers to the database until the next store replaces it.
    """
    pending = PendingWrite(user_id, version)
    return pending if _place_tombstone(pending) else None


def _place_tombstone(pending: PendingWrite) -> bool:
    """Put ``pending``'s tombstone in a shared cache; ``False`` when it cannot be reached.

    The write is counted in its budget first, in the same script: over the limit, nothing
    is placed and ``budget.Exhausted`` is raised.
    """
    found = current().backend
    counted = _to_charge(pending.user_id)
    if not isinstance(found, RedisBackend):
        budget.charge_in_memory(counted)
        return True
    tag = f"~{secrets.token_hex(6)}"
    try:
        wait = found.place_tombstone(pending.user_id, pending.version, tag, counted)
    except CacheUnavailable:
        return False
    budget.charge(wait)
    pending.tombstone = f"{pending.version}|{tag}"
    return True


def count_unwritten(user_id: int) -> None:
    """Count a write that changed nothing in its budget, as one that did is counted.

    :raise budget.Exhausted: the budget is spent.
    """
    counted = _to_charge(user_id)
    if not counted:
        return
    found, wait = current().backend, None
    if isinstance(found, RedisBackend):
        with contextlib.suppress(CacheUnavailable):
            wait = found.count_in(counted)
    if wait is None:
        budget.charge_in_memory(counted)
    else:
        budget.charge(wait)


def _to_charge(user_id: int) -> list[Window]:
    """The budget windows of a write, named like the cache's keys (``CACHE_KEY_PREFIX``)."""
    return budget.to_charge(user_id, str(current_app.config.get("CACHE_KEY_PREFIX") or ""))


def invalidate(user_id: int) -> None:
    """Drop a user's entry, or record it as pending when the cache cannot be reached."""
    try:
        current().backend.delete(user_id)
    except CacheUnavailable:
        outbox.record_now(user_id)


def available() -> bool:
    """Whether the breaker currently lets requests use the cache."""
    return current().backend.breaker.available()


def health(*, count_pending: bool = True) -> dict[str, Any]:
    """State of the cache for ``/healthz``: backend, ``ok`` or ``degraded``, pending entries.

    ``ok`` needs Redis to answer and the trusted marker to be alive: only then do warm reads
    come from the cache.

    :param count_pending: ask the database how many invalidations wait (``None`` if not).
    """
    found = current().backend
    body: dict[str, Any] = {"backend": found.name, "status": "ok"}
    if isinstance(found, RedisBackend):
        try:
            if found.marker_ttl_ms() <= 0:
                body["status"] = "degraded"
        except CacheUnavailable:
            body["status"] = "degraded"
        body["breaker"] = "closed" if found.breaker.open_until is None else "open"
    body["pending_invalidations"] = None
    if count_pending:
        with contextlib.suppress(SQLAlchemyError):
            body["pending_invalidations"] = outbox.count()
    return body
