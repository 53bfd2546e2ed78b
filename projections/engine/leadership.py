"""Projector leadership: of all the processes able to project, exactly one applies events
at a time; the others stand by and try again every retry interval, so a standby takes
over within about that long after the leader dies (even by SIGKILL: the lock goes with
the process).

The lock is the database's own: on PostgreSQL a session-level advisory lock held on a
connection of its own for as long as this process leads (checked before each step: a lost
connection means lost leadership, at once); on SQLite an exclusive ``flock`` on a file
beside the read database, which the kernel releases when the process dies. The lock only
keeps two leaders from wasting work: the checkpoint row's compare-and-set claim
(``checkpoints.claim``) is the fence, so a deposed leader's late batch cannot commit.

Who leads is also written to ``projection_leader`` for people to read (status, metrics).
All of this runs on the tail's worker thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import math
import os
import socket
import uuid
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from migrations.engine import database_unavailable, one_line
from projections.tables import projection_leader

log = logging.getLogger("shopfront.projections")
ROW = "projectors"
# pg_try_advisory_lock's key ("SHOPPROJ"); advisory locks are per database, so read
# databases sharing a server do not contend.
ADVISORY_KEY = 0x53484F5050524F4A


def process_id() -> str:
    """host:pid:random, unique to this process for its life."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lock(Protocol):
    def try_lock(self) -> bool: ...

    def alive(self) -> bool: ...

    def unlock(self) -> None: ...


class FileLock:
    """An exclusive ``flock`` on ``path``, held while the file stays open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_lock(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def alive(self) -> bool:
        # The file someone else would lock is still the one we hold.
        if self._fd is None:
            return False
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def unlock(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


class AdvisoryLock:
    """``pg_try_advisory_lock`` on a connection of its own (autocommit, never pooled):
    the lock lives exactly as long as that session."""

    def __init__(self, url: sa.URL, takeover_seconds: float) -> None:
        seconds = max(1, math.ceil(takeover_seconds))
        # Both ends notice a silent peer within about ``takeover_seconds``: the server
        # drops a dead leader's session (and its lock), and the leader's check fails.
        self._engine = sa.create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": seconds,
                "keepalives": 1,
                "keepalives_idle": 1,
                "keepalives_interval": 1,
                "keepalives_count": seconds,
                "tcp_user_timeout": seconds * 1000,
                "options": (
                    f"-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 "
                    f"-c tcp_keepalives_count={seconds} -c statement_timeout={seconds * 1000}"
                ),
            },
        )
        self._conn: Connection | None = None

    def try_lock(self) -> bool:
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            if got.scalar_one():
                self._conn = conn
                return True
        except Exception:
            conn.close()
            raise
        conn.close()
        return False

    def alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
        except Exception as error:
            _warn("the projector leader's database session is gone", error)
            return False
        return True

    def unlock(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing the session releases it anyway
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def dispose(self) -> None:
        self._engine.dispose()


def lock_for(read: Engine, takeover_seconds: float) -> Lock | None:
    """The lock that elects a leader among processes sharing ``read``'s database; None
    where only this process can reach it (an in-memory SQLite database)."""
    url = read.url
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url, takeover_seconds)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileLock(Path(f"{url.database}.leader"))
    return None


class Leadership:
    """This process's side of the election: ``keep()`` before every step says whether it
    leads (taking the lock if it is free), ``release()`` steps down."""

    def __init__(self, read: Engine, lock: Lock | None, holder: str | None = None) -> None:
        self.read = read
        self.lock = lock
        self.holder = holder or process_id()
        self.leading = False
        self.since: dt.datetime | None = None
        # Times this process became or stopped being the leader (metrics).
        self.changes = 0

    def keep(self) -> bool:
        """Whether this process leads now: still holds the lock, or just took it."""
        if self.leading:
            if self.lock is None or self.lock.alive():
                return True
            self._step_down("lost the lock")
        return self._try_take()

    def _try_take(self) -> bool:
        if self.lock is not None:
            try:
                if not self.lock.try_lock():
                    return False
            except Exception as error:
                _warn("could not try the projector lock", error)
                return False
        self.leading = True
        self.since = dt.datetime.now(dt.UTC)
        self.changes += 1
        try:
            write_leader(self.read, self.holder, self.since)
        except Exception as error:  # informational only: leading does not depend on it
            _warn("could not record the projector leader", error)
        log.info("projector leader: this process (%s) leads from now", self.holder)
        return True

    def _step_down(self, why: str, level: int = logging.WARNING) -> None:
        self.leading = False
        self.since = None
        self.changes += 1
        if self.lock is not None:
            self.lock.unlock()
        log.log(level, "projector leader: this process (%s) stepped down: %s", self.holder, why)

    def release(self) -> None:
        """Step down (at shutdown): a standby takes over at its next try."""
        if self.leading:
            with contextlib.suppress(Exception):
                clear_leader(self.read, self.holder)
            self._step_down("shutting down", logging.INFO)
        if isinstance(self.lock, AdvisoryLock):
            self.lock.dispose()


def write_leader(read: Engine, holder: str, since: dt.datetime) -> None:
    with read.begin() as conn:
        conn.execute(sa.delete(projection_leader).where(projection_leader.c.name == ROW))
        conn.execute(sa.insert(projection_leader), {"name": ROW, "holder": holder, "since": since})


def clear_leader(read: Engine, holder: str) -> None:
    with read.begin() as conn:
        conn.execute(
            sa.delete(projection_leader).where(
                projection_leader.c.name == ROW, projection_leader.c.holder == holder
            )
        )


def read_leader(conn: Connection) -> tuple[str, dt.datetime] | None:
    """(holder, since) as the leader recorded it, or None."""
    row = conn.execute(
        sa.select(projection_leader.c.holder, projection_leader.c.since).where(
            projection_leader.c.name == ROW
        )
    ).first()
    if row is None:
        return None
    since = row.since if row.since.tzinfo else row.since.replace(tzinfo=dt.UTC)
    return str(row.holder), since


def _warn(what: str, error: BaseException) -> None:
    """A database that cannot be reached (a restart) is one line per try; anything else
    keeps its traceback."""
    if database_unavailable(error):
        log.warning("%s: database unavailable: %s", what, one_line(error))
    else:
        log.warning(what, exc_info=error)
