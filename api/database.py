"""Engines for the write and read databases, tuned per dialect.

Transactions of the write model and of the projectors run as plain functions on worker
threads (``create_sync_engine``): one thread hop per transaction instead of several per
statement, which is what an async driver costs (docs/performance.md). GraphQL reads use
the async engine.

PostgreSQL engines get pools sized by the settings, a ``statement_timeout`` on every
connection, a bounded connect timeout, and a ping when a connection leaves the pool: after
a server restart the pooled connections are dead, and the ping replaces them instead of
failing a request with each.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy import create_engine as create_sa_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from migrations.engine import Purpose, ensure_sqlite_dir, one_line, sync_url, tune_sqlite


def _json_options() -> dict[str, Any]:
    return {
        "json_serializer": lambda obj: orjson.dumps(obj).decode(),
        "json_deserializer": orjson.loads,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Pool:
    """A PostgreSQL engine's pool and limits (``SHOPFRONT_DB_*``); SQLite ignores them."""

    size: int = 10
    max_overflow: int = 10
    statement_timeout_ms: int = 0  # 0: none
    connect_timeout: float = 10.0


def _server_options(url: URL, pool: Pool) -> dict[str, Any]:
    """Engine arguments of a PostgreSQL URL: the pool, and each connection's
    ``statement_timeout`` and connect timeout in its driver's words."""
    timeout = pool.statement_timeout_ms
    if url.get_driver_name() == "asyncpg":
        connect_args: dict[str, Any] = {"timeout": pool.connect_timeout}
        if timeout:
            connect_args["server_settings"] = {"statement_timeout": str(timeout)}
    else:  # psycopg: libpq's options
        connect_args = {"connect_timeout": max(1, round(pool.connect_timeout))}
        if timeout:
            connect_args["options"] = f"-c statement_timeout={timeout}"
    return {
        "pool_size": pool.size,
        "max_overflow": pool.max_overflow,
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }


def create_engine(url: str, purpose: Purpose = "read", pool: Pool | None = None) -> AsyncEngine:
    """Async engine: GraphQL reads of the read models."""
    ensure_sqlite_dir(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options = _server_options(parsed, pool or Pool())
        return create_async_engine(url, **options, **_json_options())
    engine = create_async_engine(url, pool_size=8, **_json_options())
    tune_sqlite(engine.sync_engine, purpose)
    return engine


def create_sync_engine(url: str, purpose: Purpose, pool: Pool | None = None) -> Engine:
    """Blocking engine, used from worker threads. ``write``: command transactions
    (SQLite: BEGIN IMMEDIATE, full fsync). ``projector``: read models and checkpoints.
    ``log``: reads the event log."""
    target = sync_url(url)
    ensure_sqlite_dir(target)
    if target.get_backend_name() != "sqlite":
        options = _server_options(target, pool or Pool())
        return create_sa_engine(target, **options, **_json_options())
    engine = create_sa_engine(target, **_json_options())
    tune_sqlite(engine, purpose)
    return engine


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def unreachable(url: str, which: str, pool: Pool | None = None) -> str | None:
    """Why the ``which`` database at ``url`` cannot be used (a malformed URL, an unknown
    driver, a server that does not answer), in one line; None if a connection answers."""
    try:
        parsed = make_url(url)
        engine = create_sync_engine(url, "log", pool)
    except Exception as error:  # ArgumentError, NoSuchModuleError, a missing driver...
        shown = _PASSWORD.sub(r"\1***@", url)
        return f"the {which} database URL {shown!r} is not usable: {one_line(error)}"
    shown = parsed.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as error:
        reason = one_line(error.orig if isinstance(error, DBAPIError) and error.orig else error)
        return f"cannot reach the {which} database at {shown}: {reason}"
    finally:
        engine.dispose()
    return None
