"""Gap-free positions under concurrent writers, on PostgreSQL, with the projector running.

Positions come from one counter row updated in the appending transaction
(``domain/event_log.py``): its row lock is held to commit, so a second writer cannot take
a position until the first has committed or rolled back. The tests force the interleaving
that breaks high-water-mark designs (a later transaction taking a higher position and
committing first) and check that it cannot happen, and that the projector neither passes
nor repeats an event."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from api.bootstrap import Services
from api.database import create_sync_engine
from api.settings import Settings
from domain.event_log import Recorder, append
from domain.events import CustomerRegistered
from migrations.runner import upgrade
from tests.conftest import TEST_SECRET
from tests.servers import PostgresServer, postgres_server

WAIT = 10.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def services(postgres: PostgresServer) -> AsyncIterator[Services]:
    suffix = uuid.uuid4().hex[:8]
    write, read = f"gap_write_{suffix}", f"gap_read_{suffix}"
    postgres.create_database(write)
    postgres.create_database(read)
    settings = Settings(
        write_database_url=postgres.url(write),
        read_database_url=postgres.url(read),
        jwt_secret=TEST_SECRET,
        projection_poll_interval=0.05,
    )
    await asyncio.to_thread(upgrade, settings.write_database_url, settings.read_database_url)
    wired = Services.create(settings)
    await wired.start()
    try:
        yield wired
    finally:
        await wired.close()


def _register(conn: Connection) -> int:
    """Appends one event in ``conn``'s open transaction; its position."""
    customer = str(uuid.uuid4())
    recorder = Recorder(str(uuid.uuid4()), dt.datetime.now(dt.UTC))
    recorder.record(f"customer-{customer}", 1, CustomerRegistered(customer, f"{customer}@x", "G"))
    position = append(conn, recorder)
    assert position is not None
    return position


def _waiting_for_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        waiting = conn.scalar(
            sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return bool(waiting == "Lock")


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await asyncio.to_thread(condition):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Writer(threading.Thread):
    """A second appender on its own connection: begins, appends (blocking on the counter
    row while another transaction holds it), then waits to be told to commit."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.pid: int | None = None
        self.started_tx = threading.Event()
        self.appended = threading.Event()
        self.commit = threading.Event()
        self.position: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.engine.connect() as conn, conn.begin():
                self.pid = conn.scalar(sa.text("SELECT pg_backend_pid()"))
                self.started_tx.set()
                self.position = _register(conn)
                self.appended.set()
                assert self.commit.wait(WAIT)
        except BaseException as error:
            self.error = error
            self.started_tx.set()
            self.appended.set()


@pytest.mark.parametrize("first_outcome", ["commit", "rollback"])
async def test_a_later_writer_waits_for_the_earlier_one(
    services: Services, first_outcome: str
) -> None:
    engine = create_sync_engine(services.settings.write_database_url, "write")
    try:
        head = await services.runner.head_position()
        first = engine.connect()
        first_tx = first.begin()
        taken = _register(first)
        assert taken == head + 1

        second = Writer(engine)
        second.start()
        assert second.started_tx.wait(WAIT)
        assert second.error is None, second.error
        # The second writer is blocked on the counter row: it cannot take a position (and
        # so cannot commit one) while the first transaction is open.
        await _until(lambda: second.pid is not None and _waiting_for_lock(engine, second.pid),
                     "the second writer to wait on the counter row")  # fmt: skip
        assert not second.appended.is_set()
        # The projector runs meanwhile and sees neither.
        await services.runner.catch_up(WAIT)
        assert services.runner.position == head

        if first_outcome == "commit":
            first_tx.commit()
        else:
            first_tx.rollback()
        first.close()
        assert await asyncio.to_thread(second.appended.wait, WAIT)
        assert second.error is None, second.error
        expected = taken + 1 if first_outcome == "commit" else taken
        assert second.position == expected, "a position was skipped or reused"

        # The first writer's event (if committed) is projected; the second's is not yet.
        await services.runner.catch_up(WAIT)
        assert services.runner.position == (taken if first_outcome == "commit" else head)

        second.commit.set()
        await asyncio.to_thread(second.join, WAIT)
        assert await services.runner.wait_for(expected, WAIT)
        with engine.connect() as conn:
            positions = conn.scalars(sa.text("SELECT position FROM events ORDER BY position"))
            assert list(positions) == list(range(1, expected + 1))
    finally:
        engine.dispose()


async def test_concurrent_appenders_leave_no_gap_and_the_projector_applies_each_once(
    services: Services,
) -> None:
    engine = create_sync_engine(services.settings.write_database_url, "write")
    appenders, per_appender = 8, 25

    def appender() -> list[int]:
        taken = []
        for _ in range(per_appender):
            with engine.begin() as conn:
                taken.append(_register(conn))
        return taken

    try:
        results = await asyncio.gather(*(asyncio.to_thread(appender) for _ in range(appenders)))
        positions = sorted(p for taken in results for p in taken)
        assert positions == list(range(1, appenders * per_appender + 1))
        assert await services.runner.wait_for(positions[-1], WAIT)
    finally:
        engine.dispose()
    async with services.read_engine.connect() as conn:
        profiles = await conn.scalar(sa.text("SELECT count(*) FROM customer_profiles"))
    assert profiles == appenders * per_appender, "an event was skipped or applied twice"
