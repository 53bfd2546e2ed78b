"""Engines for the write and read databases, tuned per dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

Purpose = Literal["write", "read", "projector", "log"]


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


def ensure_sqlite_dir(url: str) -> None:
    if make_url(url).get_backend_name() == "sqlite" and (path := _sqlite_file(url)):
        path.parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, purpose: Purpose) -> AsyncEngine:
    """``write``: command transactions (SQLite: BEGIN IMMEDIATE, full fsync).
    ``read``: queries of the read models. ``projector``: writes read models and checkpoints.
    ``log``: tails the event log in the write database."""
    ensure_sqlite_dir(url)
    kwargs: dict[str, Any] = {
        "json_serializer": lambda obj: orjson.dumps(obj).decode(),
        "json_deserializer": orjson.loads,
    }
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=10, max_overflow=10, **kwargs)
        return engine
    engine = create_async_engine(url, pool_size=8 if purpose == "read" else 2, **kwargs)
    _tune_sqlite(engine, purpose)
    return engine


def _tune_sqlite(engine: AsyncEngine, purpose: Purpose) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # The write model must survive power loss; read models can be rebuilt.
        cursor.execute(f"PRAGMA synchronous={'FULL' if purpose == 'write' else 'NORMAL'}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: no deadlock upgrading a read lock later.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if purpose in ("write", "projector") else "BEGIN")
