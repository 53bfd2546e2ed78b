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
