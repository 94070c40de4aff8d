"""Process managers and fault injection shared by the tests: private Redis servers, TCP proxies.

Nothing here is a stand-in: a ``RedisServer`` is a real ``redis-server`` process the test may
stop, pause or kill, and a ``Proxy`` forwards real TCP traffic to a real Redis or PostgreSQL
until the test cuts it, as a network partition or a hung server would.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port nothing listens on right now, with its cluster bus port free too.

    Redis Cluster listens on the port plus 10000 as well, so a port above 55535 makes a
    cluster node exit at start.
    """
    while True:
        with socket.socket() as probe, socket.socket() as bus:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port + 10000 > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


class RedisServer:
    """A private ``redis-server`` the test may stop, pause and restart; never the shared one."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self, *extra: str, config_file: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *([str(config_file)] if config_file else []),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory), *extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with contextlib.closing(self.client()) as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def pause(self) -> None:
        assert self.process
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class Proxy:
    """A TCP proxy in front of a server that the test can cut, as a network partition would.

    ``cut()`` drops every connection and refuses new ones (a closed port, a crashed host).
    ``black_hole()`` keeps every connection open and accepts new ones but passes nothing in
    either direction (a hung server, or packets silently dropped). ``restore()`` ends
    either. Unlike pausing the server, what the client sends meanwhile never arrives.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut_off = threading.Event()
        self.holding = threading.Event()
        self.closing = threading.Event()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                downstream.close()
                continue
            with self.lock:
                self.sockets.add(downstream)
            threading.Thread(target=self._serve, args=(downstream,), daemon=True).start()

    def _serve(self, downstream: socket.socket) -> None:
        # A black hole holds new connections too, without even reaching the server.
        while self.holding.is_set() and not self._over():
            time.sleep(0.02)
        if self._over():
            self._close(downstream)
            return
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            self._close(downstream)
            return
        with self.lock:
            self.sockets.add(upstream)
        self._pump(downstream, upstream)

    def _over(self) -> bool:
        return self.cut_off.is_set() or self.closing.is_set()

    def _pump(self, one: socket.socket, other: socket.socket) -> None:
        peers = {one: other, other: one}
        try:
            while not self._over():
                if self.holding.is_set():
                    time.sleep(0.02)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                if self._over() or self.holding.is_set():
                    continue
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            for sock in peers:
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with self.lock:
            self.sockets.discard(sock)

    def cut(self) -> None:
        """Drop every connection and refuse new ones; what is in flight is lost."""
        self.cut_off.set()
        with self.lock:
            sockets = list(self.sockets)
            self.sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def black_hole(self) -> None:
        """Pass nothing any more, in either direction, but keep every connection open."""
        self.holding.set()

    def fail(self, mode: str) -> None:
        """``cut()`` for ``"refused"``, ``black_hole()`` for ``"black-holed"``."""
        {"refused": self.cut, "black-holed": self.black_hole}[mode]()

    def restore(self) -> None:
        self.cut_off.clear()
        self.holding.clear()

    def close(self) -> None:
        self.closing.set()
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)
