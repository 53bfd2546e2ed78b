"""The command bus's group commit on a real SQLite write database, every wait bounded
(a bus that never answers fails here in seconds, not at the suite's timeout): commands
sent together are answered, more than a group's worth included, and the writer starts
again for commands sent after it went idle; a group whose transaction fails (the
database, not a refusal) fails as a whole, each of its callers told, nothing of it
committed, and the bus goes on; events are stamped in UTC whatever the process's zone."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.database import create_sync_engine
from api.settings import Settings
from domain import commands as c
from domain import write_tables as w
from domain.bus import MAX_ATTEMPTS, MAX_GROUP, CommandBus, CommandResult
from domain.handlers import HANDLERS
from domain.model import DomainError
from domain.unit_of_work import ConcurrencyConflict

STAFF = c.Actor("staff-bg", "staff")
BOUND = 10.0  # seconds: far more than any of these commands takes


async def _together(bus: CommandBus, commands: Sequence[c.Command]) -> list[Any]:
    return await asyncio.wait_for(
        asyncio.gather(*(bus.execute(command) for command in commands), return_exceptions=True),
        BOUND,
    )


def _skus(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(w.products.c.sku)))


@pytest.mark.sqlite_only("group commit: one writer thread is SQLite's (PostgreSQL has eight)")
async def test_every_command_sent_together_is_answered_and_the_writer_starts_again(
    write: tuple[CommandBus, Engine],
) -> None:
    bus, engine = write
    commits = 0

    def count(conn: Any) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(engine, "commit", count)
    try:
        many = [c.AddProduct(STAFF, f"BG-{i}", "Mug", 100, 1) for i in range(2 * MAX_GROUP + 5)]
        outcomes = await _together(bus, many)
        assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
        assert commits == 3, commits  # 64 + 64 + 5: groups of at most MAX_GROUP
        # The writer went idle; commands sent now, alone or together, are answered too.
        alone = await asyncio.wait_for(bus.execute(c.AddProduct(STAFF, "BG-a", "Mug", 1, 1)), BOUND)
        again = await _together(bus, [c.RestockProduct(STAFF, "BG-a", 1)] * 3)
    finally:
        sa.event.remove(engine, "commit", count)
    assert isinstance(alone, CommandResult)
    assert all(isinstance(o, CommandResult) for o in again), again
    positions = [o.position for o in [*outcomes, alone, *again]]
    assert positions == list(range(positions[0], positions[0] + len(many) + 4))
    assert _skus(engine) == {f"BG-{i}" for i in range(len(many))} | {"BG-a"}


@pytest.mark.sqlite_only("group commit: one writer thread is SQLite's (PostgreSQL has eight)")
async def test_a_group_whose_transaction_fails_fails_whole_and_the_bus_goes_on(
    write: tuple[CommandBus, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Broken(c.Command):
        pass

    def broken(uow: Any, command: Any) -> str:
        uow.conn.exec_driver_sql("SELECT * FROM no_such_table")  # the database fails
        return "never"

    monkeypatch.setitem(HANDLERS, Broken, broken)
    bus, engine = write
    group: list[c.Command] = [
        c.AddProduct(STAFF, "BF-1", "Mug", 100, 1),
        Broken(None),
        c.AddProduct(STAFF, "BF-2", "Mug", 100, 1),
    ]
    outcomes = await _together(bus, group)
    assert len(outcomes) == 3
    for outcome in outcomes:  # each caller is told, the accepted ones too: nothing committed
        assert isinstance(outcome, sa.exc.OperationalError), outcomes
        assert "no_such_table" in str(outcome)
    assert _skus(engine) == set()
    # Alone, the same failure reaches its caller.
    with pytest.raises(sa.exc.OperationalError):
        await asyncio.wait_for(bus.execute(Broken(None)), BOUND)
    # And the bus goes on.
    again = await _together(bus, [c.AddProduct(STAFF, f"BF-{i}", "Mug", 100, 1) for i in (1, 2)])
    assert all(isinstance(o, CommandResult) for o in again), again
    assert _skus(engine) == {"BF-1", "BF-2"}


@pytest.mark.usefixtures("far_local_zone")
async def test_events_are_stamped_in_utc_whatever_the_servers_zone(
    write: tuple[CommandBus, Engine],
) -> None:
    assert time.localtime().tm_gmtoff == 5 * 3600 + 1800
    bus, engine = write
    added = await asyncio.wait_for(bus.execute(c.AddProduct(STAFF, "TZ-1", "Mug", 1, 1)), BOUND)
    with engine.connect() as conn:
        stamped = conn.scalar(
            sa.select(w.events.c.occurred_at).where(w.events.c.position == added.position)
        )
    assert isinstance(stamped, dt.datetime)
    stamped = stamped if stamped.tzinfo else stamped.replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamped).total_seconds()) < 600, stamped


@pytest.mark.sqlite_only("group commit: one writer thread is SQLite's (PostgreSQL has eight)")
async def test_sqlite_commands_all_run_on_the_one_writer_thread(
    write: tuple[CommandBus, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One writer: commands alone, sent together, and a group given at once
    (``execute_many``) all run on the same thread, never the event loop's."""

    @dataclasses.dataclass(frozen=True)
    class Where(c.Command):
        pass

    threads: list[int] = []

    def where(uow: Any, command: Any) -> str:
        threads.append(threading.get_ident())
        time.sleep(0.02)  # long enough for the commands sent at once to overlap
        return "here"

    monkeypatch.setitem(HANDLERS, Where, where)
    bus, _ = write
    await asyncio.wait_for(bus.execute(Where(None)), BOUND)
    await _together(bus, [Where(None)] * 3)
    await asyncio.wait_for(bus.execute_many([Where(None)] * 3), BOUND)
    await asyncio.wait_for(bus.execute_many([Where(None)]), BOUND)
    # At the same time: two groups given at once and commands sent together.
    await asyncio.wait_for(
        asyncio.gather(
            bus.execute_many([Where(None)] * 2),
            bus.execute_many([Where(None)] * 2),
            _together(bus, [Where(None)] * 2),
        ),
        BOUND,
    )
    assert len(threads) == 14
    assert len(set(threads)) == 1 and threading.get_ident() not in threads, threads


@dataclasses.dataclass(frozen=True)
class _Racing(c.Command):
    """A command that loses ``losses`` races (another writer changed its row first)
    before it wins, as a handler meets them: ``ConcurrencyConflict``."""

    key: str = ""
    losses: int = 0


async def test_a_command_that_lost_a_race_runs_again_and_is_refused_after_max_attempts(
    write: tuple[CommandBus, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: dict[str, int] = {}

    def racing(uow: Any, command: Any) -> str:
        attempts[command.key] = attempts.get(command.key, 0) + 1
        if attempts[command.key] <= command.losses:
            raise ConcurrencyConflict(command.key)
        return str(command.key)

    monkeypatch.setitem(HANDLERS, _Racing, racing)
    bus, engine = write
    alone = await asyncio.wait_for(bus.execute(_Racing(None, "alone", 3)), BOUND)
    assert alone.entity_id == "alone" and attempts["alone"] == 4
    # In a group: rolled back alone, the others committed, run again after the commit.
    sent = [c.AddProduct(STAFF, "RC-1", "Mug", 1, 1), _Racing(None, "grouped", 1)]
    together = await _together(bus, [*sent, c.AddProduct(STAFF, "RC-2", "Mug", 1, 1)])
    assert [getattr(o, "entity_id", o) for o in together][1] == "grouped", together
    assert all(isinstance(o, CommandResult) for o in together), together
    many = await asyncio.wait_for(
        bus.execute_many([_Racing(None, "many", 2), c.AddProduct(STAFF, "RC-3", "Mug", 1, 1)]),
        BOUND,
    )
    assert all(isinstance(o, CommandResult) for o in many), many
    assert (attempts["grouped"], attempts["many"]) == (2, 3)
    assert _skus(engine) == {"RC-1", "RC-2", "RC-3"}
    # A command that never wins is refused after MAX_ATTEMPTS tries, not run forever.
    with pytest.raises(DomainError) as refused:
        await asyncio.wait_for(bus.execute(_Racing(None, "never", 10**6)), BOUND)
    assert refused.value.code == "CONFLICT" and attempts["never"] == MAX_ATTEMPTS
    assert refused.value.message == "The data changed concurrently; try again"


async def test_closing_the_bus_waits_for_the_command_in_flight(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Slow(c.Command):
        pass

    started, finished = threading.Event(), threading.Event()

    def slow(uow: Any, command: Any) -> str:
        started.set()
        time.sleep(0.3)  # in flight while the bus closes
        finished.set()
        return "slow"

    monkeypatch.setitem(HANDLERS, Slow, slow)
    engine = create_sync_engine(settings.write_database_url, "write")
    bus = CommandBus(engine)
    try:
        running = asyncio.create_task(bus.execute(Slow(None)))
        assert await asyncio.to_thread(started.wait, BOUND)
        await asyncio.to_thread(bus.close)
        assert finished.is_set()  # close returned only once the command was done
        assert (await asyncio.wait_for(running, BOUND)).entity_id == "slow"
    finally:
        bus.close()
        engine.dispose()
