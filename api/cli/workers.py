"""``shopfront serve --workers N``: N uvicorn workers, each on a listening socket of its own
bound with ``SO_REUSEPORT``, so that the kernel spreads new connections evenly over them.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts
every connection waiting (asyncio and uvloop accept until the backlog is empty): 32
connections opened at once went 29-31 to one of two workers here, so the second process
served almost nothing (docs/performance.md, "Several processes on PostgreSQL"; libuv's
``UV_TCP_SINGLE_ACCEPT`` made no difference). With one socket per worker the kernel
hashes each new connection to one of the sockets, as ``gunicorn --reuse-port`` and
nginx's ``reuseport`` do.

The price: connections still waiting in a worker's backlog when that worker dies are
reset (a shared socket would keep them for the others); uvicorn replaces the worker, on
a new socket, as before. ``SO_REUSEPORT`` would also let a second server started on the
same port by mistake join it silently, so an ordinary bind is tried first: it fails while
anything listens there.
"""

from __future__ import annotations

import socket
from typing import Any

from uvicorn import Config
from uvicorn.supervisors import Multiprocess


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (taken, or not an address of this machine)."""
    if port == 0:
        return "--workers needs a fixed --port (each worker binds it)"
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only skips connections in TIME_WAIT; a listener still refuses.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as error:
        return f"cannot listen on {host}:{port}: {error.strerror or error}"
    finally:
        probe.close()
    return None


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class SpreadWorkers(Multiprocess):
    """uvicorn's supervisor (restarts, signals, health checks), but every worker it
    starts gets a new socket: uvicorn reads ``self.sockets`` exactly once per worker it
    creates, right before starting it."""

    def __init__(self, config: Config) -> None:
        self._given: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        sock = listening_socket(self.config.host, self.config.port, self.config.backlog)
        self._given.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        """uvicorn's constructor stores the shared sockets; there are none."""

    def keep_subprocess_alive(self) -> None:
        # The workers started since the last round inherited their sockets when they were
        # spawned (multiprocessing passes the descriptor to the new process): this
        # process's copies go, so that a worker's socket closes when the worker dies
        # instead of holding connections that nobody accepts.
        while self._given:
            self._given.pop().close()
        super().keep_subprocess_alive()


def run_workers(app: str, workers: int, **options: Any) -> None:
    """Serve the app factory ``app`` from ``workers`` processes (uvicorn's options)."""
    config = Config(app, factory=True, workers=workers, **options)
    SpreadWorkers(config).run()
