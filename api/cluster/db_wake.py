"""Waking other processes on commit through the database itself, when there is no Redis
(``SHOPFRONT_DB_WAKE``, on unless ``SHOPFRONT_REDIS_URL`` is set: then the change bus
does it, ``bus.py``).

Like the bus, a wake-up says only *when* to look: what to apply or deliver is always
read from the event log and the read model by position, so a lost or duplicated wake-up
costs at most one poll interval (``SHOPFRONT_PROJECTION_POLL_INTERVAL``, still the safety
net), never a lost or repeated change.

PostgreSQL: LISTEN/NOTIFY on the read database (every process connects to it). After a
command commits events, its process sends ``pg_notify`` with the log's head (the leader
steps at once); after the leader commits a step, or a rebuild or retry moves a
checkpoint or generation, with the projections' position (the others follow at once: new
positions for read-your-writes waits, generations for the response cache, the order
changes for subscribers). Sent on a connection of its own, after the commit and never
inside the write transaction, by a task: at most one ``pg_notify`` in flight and one
pending, whatever commits meanwhile coalesces into the pending one. Each process listens
on one more connection and reconnects with a jittered backoff if it drops (one warning
line per outage); on reconnect it looks at once for what it missed.

SQLite: no messages between processes, but ``PRAGMA data_version`` on a connection
changes when any other connection commits to the file. A thread per database file reads
it every ``SHOPFRONT_SQLITE_WATCH_INTERVAL`` seconds on a connection of its own and
wakes the event loop when it moved (the write file: a leader steps; the read file:
followers follow and re-read the generations).

Also here: ``ReadVersion``, the response cache's check on SQLite that the read database
has not changed since the generations were last read (see ``api/http/response_cache.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy.engine import make_url

from api.cluster.link import backoff, cancel_all
from migrations.engine import one_line

log = logging.getLogger("shopfront.db_wake")
CHANNEL = "shopfront_changes"
# Seconds one connect or pg_notify may take; and how often the listening connection is
# checked when no message came (a server gone without closing the socket).
TIMEOUT = 2.0
HEALTH_INTERVAL = 1.0
RECONNECT_MAX = 2.0


class Target(Protocol):
    """What a wake-up makes this process do (``ReadSide``): ``signal``: the projections
    moved (or unknown: after a reconnect), everyone looks now; ``log_moved``: the log
    reaches at least ``head``, the leader steps; ``read_moved``: the SQLite read file
    changed."""

    def signal(self, head: int | None = None) -> None: ...
    def log_moved(self, head: int | None = None) -> None: ...
    def read_moved(self) -> None: ...


class DbWake:
    """The wake-ups of one process: sends (PostgreSQL) and listens or watches."""

    def __init__(
        self,
        target: Target,
        *,
        postgres_url: str | None = None,
        log_file: str | None = None,
        read_file: str | None = None,
        watch_interval: float = 0.002,
    ) -> None:
        self.target = target
        self.postgres_url = postgres_url
        # SQLite files watched, each with what a commit to it wakes.
        self.watched: dict[str, Callable[[], None]] = {}
        if log_file is not None:
            self.watched[log_file] = target.log_moved
        if read_file is not None:
            moved = target.read_moved
            if read_file in self.watched:  # one file for both: both
                log_moved = self.watched[read_file]

                def both() -> None:
                    log_moved()
                    moved()

                self.watched[read_file] = both
            else:
                self.watched[read_file] = moved
        self.watch_interval = watch_interval
        self.process = uuid.uuid4().hex
        # Wake-ups received (PostgreSQL messages from other processes, SQLite changes seen).
        self.messages = 0
        self.sent = 0
        self._listening = False
        self._listened = False
        # Set once the first listening attempt has succeeded or failed.
        self._tried = asyncio.Event()
        self._head = 0
        # None: no projections committed since the last message.
        self._applied: int | None = None
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._sender: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        if self.postgres_url is not None and not self._listening:
            return False
        if self.watched and not (self._watchers and all(t.is_alive() for t in self._watchers)):
            return False
        return self.postgres_url is not None or bool(self.watched)

    # -- sending (PostgreSQL; SQLite needs none) -----------------------------------------
    def committed(self, head: int) -> None:
        """A command in this process committed events up to ``head``."""
        if self.postgres_url is not None:
            self._head = max(self._head, head)
            self._kick.set()

    def applied(self, position: int) -> None:
        """This process committed projections up to ``position`` (a step, a rebuild, a
        retry)."""
        if self.postgres_url is not None:
            self._applied = max(self._applied or 0, position)
            self._kick.set()

    def _take_pending(self) -> str | None:
        if not self._head and self._applied is None:
            return None
        message: dict[str, object] = {"from": self.process}
        if self._head:
            message["head"] = self._head
        if self._applied is not None:
            message["applied"] = self._applied
        self._head, self._applied = 0, None
        return orjson.dumps(message).decode()

    async def _connect(self) -> asyncpg.Connection:
        assert self.postgres_url is not None
        url = make_url(self.postgres_url)
        connection: asyncpg.Connection = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=TIMEOUT,
        )
        return connection

    async def _send(self, payload: str) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                if self._sender is None or self._sender.is_closed():
                    self._sender = await self._connect()
                await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            self.sent += 1
        except Exception as error:  # dropped: the others' poll finds the change
            log.debug("could not send a wake-up: %s", one_line(error))
            await self._drop_sender()

    async def _drop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(Exception):
                sender.terminate()

    async def _send_forever(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            payload = self._take_pending()
            if payload is not None:
                await self._send(payload)

    async def flush(self) -> None:
        """Send what is pending once, without listening: for a short-lived process
        (``shopfront projections rebuild|retry``: the servers learn the new generations
        at once)."""
        payload = self._take_pending() if self.postgres_url is not None else None
        if payload is not None:
            await self._send(payload)
            await self._drop_sender()

    # -- listening (PostgreSQL) -----------------------------------------------------------
    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            self._listened = False
            try:
                await self._listen()
            except Exception as error:
                self._tried.set()
                # One line per outage: when a live connection drops, or the first try fails.
                if self._listened or failures == 0:
                    log.warning(
                        "database wake-ups lost (%s): other processes' changes arrive by "
                        "poll until it reconnects",
                        one_line(error),
                    )
                else:
                    log.debug("database wake-ups: reconnect failed: %s", one_line(error))
            failures = 1 if self._listened else failures + 1
            await asyncio.sleep(backoff(failures, RECONNECT_MAX))

    async def _listen(self) -> None:
        connection = await self._connect()
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._received)
            self._listening = self._listened = True
            self._tried.set()
            self.target.signal(None)  # whatever was sent while this process did not listen
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEALTH_INTERVAL):
                        await lost.wait()
                if not lost.is_set():
                    async with asyncio.timeout(TIMEOUT):
                        await connection.execute("SELECT 1")
            raise ConnectionError("the listening connection closed")
        finally:
            self._listening = False
            connection.terminate()

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if not isinstance(message, dict) or message.get("from") == self.process:
                return
            head = int(message.get("head", 0))
            applied = int(message["applied"]) if "applied" in message else None
        except (orjson.JSONDecodeError, TypeError, ValueError):
            log.warning("ignored a malformed wake-up on %s", CHANNEL)
            return
        self.messages += 1
        if applied is not None:  # the projections moved (a leader's step, a rebuild, a retry)
            self.target.signal(max(head, applied))
        else:  # only the log: for the leader
            self.target.log_moved(head or None)

    # -- watching (SQLite) ----------------------------------------------------------------
    def _watch(self, path: str, wake: Callable[[], None], loop: asyncio.AbstractEventLoop) -> None:
        """On a thread: wake the loop whenever another connection committed to ``path``."""
        connection: sqlite3.Connection | None = None
        seen: int | None = None
        now: int | None
        while not self._stop.is_set():
            try:
                if connection is None:
                    connection = sqlite3.connect(path, check_same_thread=False)
                now = int(connection.execute("PRAGMA data_version").fetchall()[0][0])
            except sqlite3.Error:
                now = seen  # busy, or the file is being replaced: look again next time
            if seen is not None and now != seen:
                self.messages += 1
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(wake)
            seen = now
            self._stop.wait(self.watch_interval)
        if connection is not None:
            connection.close()

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop.clear()
        for path, wake in self.watched.items():
            thread = threading.Thread(
                target=self._watch, args=(path, wake, loop), name="shopfront-db-wake", daemon=True
            )
            thread.start()
            self._watchers.append(thread)
        if self.postgres_url is not None:
            self._tasks = [
                asyncio.create_task(self._listen_forever(), name="db-wake-listener"),
                asyncio.create_task(self._send_forever(), name="db-wake-sender"),
            ]
            # Listening before the first request is served (bounded: a server that does
            # not answer is logged and retried in the background).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TIMEOUT):
                    await self._tried.wait()

    async def close(self) -> None:
        self._stop.set()
        await cancel_all(self._tasks)
        self._tasks = []
        await self._drop_sender()
        for thread in self._watchers:
            await asyncio.to_thread(thread.join, 1.0)
        self._watchers = []


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def for_databases(
    write_url: str, read_url: str, target: Target, watch_interval: float
) -> DbWake | None:
    """The wake-ups for these databases: NOTIFY on the read database if it is PostgreSQL
    (else the write one's), a watcher per SQLite file; None if neither applies."""
    log_file, read_file = sqlite_file(write_url), sqlite_file(read_url)
    servers = [u for u in (read_url, write_url) if make_url(u).get_backend_name() == "postgresql"]
    if log_file is None and read_file is None and not servers:
        return None
    return DbWake(
        target,
        postgres_url=servers[0] if servers else None,
        log_file=log_file,
        read_file=read_file,
        watch_interval=watch_interval,
    )


class ReadVersion:
    """SQLite: has the read database changed since the generations were last read here?
    ``PRAGMA data_version`` on a connection of its own (a few microseconds); when it moved,
    the generations are read again and handed to ``observe`` before a cached answer is
    served, so that a rebuild or retry committed by another process a moment ago is never
    answered from the cache."""

    def __init__(self, path: str, observe: Callable[[Mapping[str, int]], object]) -> None:
        self.path = path
        self.observe = observe
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(self.path, check_same_thread=False)
                connection = self._connection
                now = int(connection.execute("PRAGMA data_version").fetchall()[0][0])
                if now == self._seen:
                    return
                rows = connection.execute(
                    "SELECT name, generation FROM projection_checkpoints"
                ).fetchall()
            except sqlite3.Error:
                return  # not migrated yet, or busy: the poll and the watcher still apply
            self._seen = now
        self.observe({str(name): int(generation) for name, generation in rows})

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
