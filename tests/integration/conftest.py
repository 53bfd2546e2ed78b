"""Fixtures the integration tests share: the command bus on the test's write database,
an engine on its read database, and a process time zone far from UTC."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine

from api.database import create_sync_engine
from api.settings import Settings
from domain.bus import CommandBus


@pytest.fixture
async def write(settings: Settings) -> AsyncIterator[tuple[CommandBus, Engine]]:
    """The command bus on the test's write database, and that database's engine."""
    engine = create_sync_engine(settings.write_database_url, "write")
    bus = CommandBus(engine)
    try:
        yield bus, engine
    finally:
        bus.close()
        engine.dispose()


@pytest.fixture
def read(settings: Settings) -> Iterator[Engine]:
    """An engine on the test's read database, as the projector runs on it."""
    engine = create_sync_engine(settings.read_database_url, "projector")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def far_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone 5 h 30 min from UTC (undone afterwards)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()
