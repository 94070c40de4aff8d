"""Database connections that cost a request a bounded time when PostgreSQL does not answer.

libpq waits as long as the operating system lets it: a server that accepts connections and
never answers (hung, or behind a network that drops packets) would hold a request, and the
worker serving it, for minutes. Three bounds apply to every PostgreSQL connection:

- connecting takes at most ``DATABASE_TIMEOUT`` seconds (psycopg's own ``connect_timeout``
  cannot go below 2 s, so the attempt runs on a helper thread that is given up on);
- each statement or commit waits at most ``DATABASE_TIMEOUT`` for its answer, in requests and
  in the cache's housekeeping; then the connection is closed and the pool replaces it;
- lock waits end after ``DATABASE_LOCK_TIMEOUT``, on the server, with an ordinary error.

Command-line work (migrations, pruning) runs without the statement bound. A pooled
connection is checked for liveness without a round trip: a connection the server has
closed is readable, and is replaced before use.
"""

from __future__ import annotations

import os
import select
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from flask import Flask, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError

from app.extensions import db

#: Set where work outside a request must still be bounded (the cache's housekeeping).
_bounded: ContextVar[bool] = ContextVar("database_bounded", default=False)

#: Connection attempts run here, so that one the server never answers can be given up on.
_connector = ThreadPoolExecutor(max_workers=4, thread_name_prefix="database-connect")

#: Server-side end of a transaction left idle by a client that went away, in milliseconds.
IDLE_IN_TRANSACTION_MS = 10_000

#: TCP keepalives, so a peer that vanished is noticed in seconds, not hours.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def _new_connector() -> None:
    """A forked child gets an executor of its own: the parent's threads did not follow."""
    global _connector
    _connector = ThreadPoolExecutor(max_workers=4, thread_name_prefix="database-connect")


os.register_at_fork(after_in_child=_new_connector)


class DatabaseTimeout(psycopg.OperationalError):
    """The server did not answer in time; the connection was closed, the server is not down."""


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server has a deadline."""

    #: Seconds a statement may wait for the server; set per engine on a subclass.
    deadline: float = 1.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """Run ``gen`` like psycopg does, giving up after ``deadline`` in a request."""
        if timeout is None and (has_request_context() or _bounded.get()):
            timeout = self.deadline
        started = time.monotonic()
        try:
            return super().wait(gen, interval, timeout)
        except psycopg.OperationalError:
            if timeout is None or time.monotonic() - started < timeout:
                raise
            # Half a statement is in flight: the connection cannot be used again.
            self.close()
            raise DatabaseTimeout(f"the database did not answer within {timeout:g} s") from None


def on_postgresql() -> bool:
    """Whether the app's database is PostgreSQL (else SQLite, the embedded default)."""
    return bool(db.engine.dialect.name == "postgresql")


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection outside any transaction, where each statement commits by itself.

    For one statement that is whole on its own: no ``BEGIN`` before it and no ``COMMIT`` or
    ``ROLLBACK`` after it, so one round trip instead of three.
    """
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


@contextmanager
def bounded() -> Iterator[None]:
    """Bound statements outside a request too, for the rest of the block (this thread)."""
    token = _bounded.set(True)
    try:
        yield
    finally:
        _bounded.reset(token)


def _close_when_done(future: Future[BoundedConnection]) -> None:
    """Close a connection that arrived after its caller gave up on it."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _connect(connection_class: type[BoundedConnection], timeout: float, **params: Any) -> Any:
    """Connect, giving up after ``timeout`` seconds whatever the server does."""
    future = _connector.submit(connection_class.connect, **params)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        if not future.cancel():
            future.add_done_callback(_close_when_done)
        raise psycopg.OperationalError(
            f"could not connect to the database within {timeout:g} s"
        ) from None


def _readable(connection: Any) -> bool:
    """Whether an idle connection has something to read: the server closed it."""
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


def init_app(app: Flask) -> None:
    """Apply the bounds to ``app``'s PostgreSQL engine (call after ``db.init_app``)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return
    timeout = float(app.config["DATABASE_TIMEOUT"])
    connection_class = type("BoundedConnection", (BoundedConnection,), {"deadline": timeout})
    lock_ms = int(float(app.config["DATABASE_LOCK_TIMEOUT"]) * 1000)
    watch(engine, connection_class, timeout, lock_ms)
    # A forked worker must not share its parent's sockets (gunicorn --preload).
    engine_ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _forget_parent_connections(engine_ref))


def _forget_parent_connections(engine_ref: weakref.ref[Engine]) -> None:
    """In a new child process: drop the pool inherited from the parent, without closing it."""
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def watch(
    engine: Engine, connection_class: type[BoundedConnection], timeout: float, lock_ms: int
) -> None:
    """Hook the bounded connect and the liveness check into ``engine``."""

    @event.listens_for(engine, "do_connect")
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        params = dict(cparams)
        if cargs:
            params["conninfo"] = cargs[0]
        # A transaction whose client vanished (its connection closed on a timeout, or the
        # network gone) must not hold its row lock for TCP's hours: the server ends it.
        options = (
            f"-c lock_timeout={lock_ms} "
            f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
        )
        params["options"] = f"{params['options']} {options}" if "options" in params else options
        params.update(KEEPALIVES)
        # psycopg's own bound still applies, in the helper thread.
        params.setdefault("connect_timeout", max(2, int(timeout + 1)))
        return _connect(connection_class, timeout, **params)

    @event.listens_for(engine, "handle_error")
    def keep_the_pool(context: Any) -> None:
        # One statement that timed out says nothing of the other pooled connections, which
        # SQLAlchemy would otherwise all drop (and every worker thread reconnect at once).
        if isinstance(context.original_exception, DatabaseTimeout):
            context.invalidate_pool_on_disconnect = False

    @event.listens_for(engine, "checkout")
    def check_alive(connection: Any, _record: Any, _proxy: Any) -> None:
        if _readable(connection):
            raise DisconnectionError("the server closed this connection")
