"""Engines for the write and read databases, tuned per dialect.

Transactions of the write model and of the projectors run as plain functions on worker
threads (``create_sync_engine``): one thread hop per transaction instead of several per
statement, which is what an async driver costs (docs/performance.md). GraphQL reads use
the async engine.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy import create_engine as create_sa_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from migrations.engine import Purpose, ensure_sqlite_dir, sync_url, tune_sqlite


def _json_options() -> dict[str, Any]:
    return {
        "json_serializer": lambda obj: orjson.dumps(obj).decode(),
        "json_deserializer": orjson.loads,
    }


def create_engine(url: str, purpose: Purpose = "read") -> AsyncEngine:
    """Async engine: GraphQL reads of the read models."""
    ensure_sqlite_dir(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=10, max_overflow=10, **_json_options())
    engine = create_async_engine(url, pool_size=8, **_json_options())
    tune_sqlite(engine.sync_engine, purpose)
    return engine


def create_sync_engine(url: str, purpose: Purpose) -> Engine:
    """Blocking engine, used from worker threads. ``write``: command transactions
    (SQLite: BEGIN IMMEDIATE, full fsync). ``projector``: read models and checkpoints.
    ``log``: reads the event log."""
    target = sync_url(url)
    ensure_sqlite_dir(target)
    if target.get_backend_name() != "sqlite":
        return create_sa_engine(target, pool_size=10, max_overflow=10, **_json_options())
    engine = create_sa_engine(target, **_json_options())
    tune_sqlite(engine, purpose)
    return engine
