"""Projector leadership on real databases: the lock elects one leader (a file lock on
SQLite, an advisory lock on PostgreSQL), a leader whose lock is gone stops leading at its
next check, and the checkpoint row fences a deposed leader: of two runners stepping the
same batch at once, exactly one commits it."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.database import create_sync_engine
from domain.bus import CommandBus
from migrations.runner import upgrade
from projections.engine.event_source import head_position
from projections.engine.leadership import Leadership, lock_for, read_leader
from projections.engine.read_side import ReadSide
from projections.engine.step import StepOutcome
from projections.registry import PROJECTORS
from tests.integration.integration_support import (
    ShopModel,
    check_invariants,
    checkpoints,
    run_shopper,
)
from tests.servers import PostgresServer, postgres_server

# Its `urls` fixture runs every test on SQLite and on PostgreSQL in the SQLite run; the
# --db=postgresql run would repeat the PostgreSQL half.
pytestmark = pytest.mark.sqlite_only("covers both backends by itself")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(
    request: pytest.FixtureRequest, template_dir: Path, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """(write URL, read URL) of two migrated, empty databases."""
    if request.param == "sqlite":
        import shutil

        for name in ("write.db", "read.db"):
            shutil.copy(template_dir / name, tmp_path / name)
        yield f"sqlite+aiosqlite:///{tmp_path}/write.db", f"sqlite+aiosqlite:///{tmp_path}/read.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    suffix = uuid.uuid4().hex[:8]
    for name in (f"lw_{suffix}", f"lr_{suffix}"):
        server.create_database(name)
    write, read = server.url(f"lw_{suffix}"), server.url(f"lr_{suffix}")
    upgrade(write, read)
    yield write, read


def _leader(read: Engine) -> str | None:
    with read.connect() as conn:
        found = read_leader(conn)
    return None if found is None else found[0]


def test_one_leader_at_a_time_and_a_lost_lock_stops_it(urls: tuple[str, str]) -> None:
    read = create_sync_engine(urls[1], "projector")
    one = Leadership(read, lock_for(read, 2.0), "one")
    two = Leadership(read, lock_for(read, 2.0), "two")
    try:
        assert one.keep() is True
        assert two.keep() is False  # held by one
        assert one.keep() is True  # still held, checked
        assert _leader(read) == "one"
        one.release()
        assert _leader(read) is None
        assert two.keep() is True  # free: taken at the next try
        assert _leader(read) == "two"
        assert one.keep() is False

        # The lock goes away under the leader (its session killed, its lock file replaced):
        # someone else can take it, and the old leader stops at its next check.
        _break_lock(read, two)
        assert one.keep() is True
        assert two.keep() is False
        assert two.leading is False
        assert _leader(read) == "one"
        assert two.changes == 2  # led, lost it; one: led, released, led again
        assert one.changes == 3
    finally:
        one.release()
        two.release()
        read.dispose()


def _break_lock(read: Engine, leadership: Leadership) -> None:
    if read.url.get_backend_name() == "postgresql":
        with read.connect() as conn:
            killed = conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                )
            )
        assert killed == 1
    else:
        path = Path(f"{read.url.database}.leader")
        path.unlink()  # a new file, a new lock: the old one no longer elects anybody


async def test_a_deposed_leaders_late_batch_cannot_commit(urls: tuple[str, str]) -> None:
    """Two runners read the same checkpoints and step the same batch at the same moment
    (as a leader that lost its lock mid-step and its successor would): one commits, the
    other's claim finds the checkpoint moved and commits nothing; every event is applied
    once."""
    write = create_sync_engine(urls[0], "write")
    log = create_sync_engine(urls[0], "log")
    reads = [create_sync_engine(urls[1], "projector") for _ in range(2)]
    bus = CommandBus(write)
    runners = [ReadSide(log, read, PROJECTORS, batch_size=10_000) for read in reads]
    try:
        await run_shopper(bus, ShopModel(), random.Random(15), 80)
        for runner in runners:
            await runner.load_checkpoints()
        positions = dict(runners[0].positions)
        assert positions == dict(runners[1].positions)
        start = threading.Barrier(2)

        def step(runner: ReadSide) -> StepOutcome:
            start.wait(10)
            return runner._step(dict(positions))

        outcomes = await asyncio.gather(*(asyncio.to_thread(step, r) for r in runners))
        committed = [o for o in outcomes if o.positions]
        fenced = [o for o in outcomes if o.checkpoints_moved]
        assert len(committed) == 1 and len(fenced) == 1, outcomes
        assert not fenced[0].positions and not fenced[0].changes
        with log.connect() as conn:
            head = head_position(conn)
        assert checkpoints(reads[0]) == dict.fromkeys(PROJECTORS, head)
        check_invariants(write, reads[0])  # nothing counted twice
    finally:
        for runner in runners:
            runner.close()
        bus.close()
        for engine in (write, log, *reads):
            engine.dispose()
