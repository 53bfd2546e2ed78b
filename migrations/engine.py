"""How Shopfront opens its databases, whoever opens them (the app, the migrations): the
blocking driver of a URL, the SQLite file's folder, and SQLite's per-connection tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url

Purpose = Literal["write", "read", "projector", "log"]
SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


def ensure_sqlite_dir(url: str | URL) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def sync_url(url: str) -> URL:
    """The same database through its blocking driver (aiosqlite -> pysqlite, asyncpg ->
    psycopg)."""
    parsed = make_url(url)
    return parsed.set(drivername=SYNC_DRIVERS.get(parsed.get_backend_name(), parsed.drivername))


def migration_engine(url: str) -> Engine:
    """A blocking engine for Alembic (SQLite tuned as the event log's reader is)."""
    target = sync_url(url)
    ensure_sqlite_dir(target)
    engine = sa.create_engine(target)
    if target.get_backend_name() == "sqlite":
        tune_sqlite(engine, "log")
    return engine


def tune_sqlite(engine: Engine, purpose: Purpose) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MiB of page cache per connection (the default is 2 MiB): random-key inserts
        # into large tables otherwise go to the OS for most pages.
        cursor.execute("PRAGMA cache_size=-65536")
        # The write model must survive power loss; read models can be rebuilt.
        cursor.execute(f"PRAGMA synchronous={'FULL' if purpose == 'write' else 'NORMAL'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: no deadlock upgrading a read lock later.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if purpose in ("write", "projector") else "BEGIN")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database cannot be reached or
    answered in time: refused or dropped connections, a server shutting down or starting
    up, a pool with no connection to give, a statement timeout. Such a request may succeed
    if retried; anything else is a bug or a bad statement."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unavailable(current):
            return True
        # What caused it: ``raise ... from None`` says the context is not the cause.
        if current.__cause__ is not None or current.__suppress_context__:
            current = current.__cause__
        else:
            current = current.__context__
    return False


def one_line(error: BaseException) -> str:
    """An error for a log line: its type and the first line of its message."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa.exc.TimeoutError | ConnectionError | TimeoutError):
        return True  # the pool's timeout; refused, reset or timed-out sockets
    # The drivers' own classes, by module and name: no driver need be imported to ask.
    module = type(error).__module__.split(".")[0]
    names = {cls.__name__ for cls in type(error).__mro__}
    if module == "asyncpg":
        return bool(names & _ASYNCPG) or "connection is closed" in str(error)
    if module == "psycopg":  # not a deadlock or serialization failure (class 40)
        sqlstate = getattr(error, "sqlstate", None)
        return bool(names & _PSYCOPG) and (sqlstate is None or sqlstate[:2] in _PG_CLASSES)
    if module == "sqlite3":
        return "database is locked" in str(error)  # busy beyond busy_timeout
    return False


_ASYNCPG = frozenset(
    {
        "PostgresConnectionError",  # ConnectionDoesNotExistError, ConnectionFailureError...
        "CannotConnectNowError",  # the server is starting up or shutting down
        "OperatorInterventionError",  # AdminShutdownError, QueryCanceledError (timeouts)
        "ConnectionDoesNotExistError",
    }
)
# psycopg: OperationalError covers lost and refused connections and shutdowns (SQLSTATE
# classes 08, 57, 53, 58); QueryCanceled is a statement_timeout.
_PSYCOPG = frozenset({"OperationalError", "QueryCanceled"})
_PG_CLASSES = frozenset({"08", "53", "57", "58"})
