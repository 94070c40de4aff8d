"""Keeping the trusted marker alive, from a thread of its own, outside every request.

Redis is trusted only while the marker is alive. Each reconcile reads Redis's clock, applies
every pending invalidation (a tombstone of the version the write committed), deletes exactly
the rows it read and makes the marker live until ``CACHE_TRUST_TTL`` after that clock
reading: a marker alive at any moment vouches for every pending row committed more than that
long before it.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass

from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError

from app import database
from app.extensions import db
from app.preferences.cache import outbox
from app.preferences.cache.backend import RedisBackend
from app.preferences.cache.breaker import CacheUnavailable

log = logging.getLogger("app.preferences.cache")


@dataclass
class Trust:
    """What housekeeping last found, per process."""

    #: Housekeeping last failed to renew the marker.
    untrusted: bool = False
    #: Housekeeping last failed to reach the database; readers then serve an untrusted
    #: entry rather than wait for a database that does not answer.
    database_down: bool = False
    #: This outage of the database has been logged by the read path.
    stale_serve_logged: bool = False


def reconcile(backend: RedisBackend, trust: Trust, ttl_seconds: float) -> int:
    """Apply every pending invalidation, then renew the trusted marker.

    :return: how many pending rows were applied.
    :raise CacheUnavailable: Redis failed.
    :raise SQLAlchemyError: the database failed.
    """
    started_ms = backend.clock_ms()
    applied = 0
    while True:
        pending = outbox.oldest()
        for row in pending:
            if row.version is None:
                backend.delete(row.user_id)
            else:
                backend.store(row.user_id, row.version, f"~p{row.id}")
        if pending:
            outbox.remove([row.id for row in pending])
        applied += len(pending)
        if len(pending) < outbox.BATCH:
            break
    backend.renew_marker(started_ms + int(ttl_seconds * 1000), secrets.token_hex(8))
    if trust.untrusted or trust.database_down:
        log.info("Settings cache trusted again; %d pending entries applied", applied)
    trust.untrusted = trust.database_down = trust.stale_serve_logged = False
    return applied


class Housekeeper:
    """The thread that renews the marker; started on first use in each process (so a fork
    gets its own), stopped by ``stop``."""

    def __init__(self, app: Flask, backend: RedisBackend, trust: Trust) -> None:
        self.app = app
        self.backend = backend
        self.trust = trust
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
                self.wake.wait(self.tick())
            db.session.remove()

    def tick(self, *, only_if_missing: bool = False) -> float:
        """Renew the marker when it is due (or only when it is gone); never raises.

        :return: seconds until the next check: when the marker will be due, plus a random
            part of a check period, so that the processes do not all find it due at once
            and each renew it (with a fixed period they stayed in step: a host of five
            workers reconciled 17 times a second, where once every 200 ms is enough).
        """
        period = self.ttl / 5
        due_ms = self.ttl * 600
        try:
            remaining: float = self.backend.marker_ttl_ms()
            due = remaining < 0 if only_if_missing else remaining < due_ms
            if due:
                reconcile(self.backend, self.trust, self.ttl)
                remaining = self.ttl * 1000  # renewed for a whole life
        except CacheUnavailable:
            self.trust.untrusted = True
        except (OperationalError, InterfaceError) as exc:
            if not self.trust.database_down:
                log.warning("Cannot check pending invalidations, database unreachable: %s", exc)
            self.trust.database_down = True
            self.trust.untrusted = True
        except Exception:
            # A programming error (a migration not applied yet, say) is not an outage.
            log.exception("Settings cache housekeeping failed")
        else:
            until_due = max(0.0, (remaining - due_ms) / 1000)
            return min(until_due, self.ttl) + period * secrets.randbelow(1000) / 1000
        return period
